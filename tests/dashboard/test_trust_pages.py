"""What a manager reads, in headless Chromium: an unknown page in words with a way back, and
dropdown options readable on the dark theme (the figure rules themselves are tested in test_trust)."""

import pytest
from selenium.webdriver.common.by import By

pytestmark = pytest.mark.browser

ZENGDU = "421303"


def test_an_unknown_page_says_so_in_the_chosen_language_with_a_way_back(cockpit):
    cockpit.open_as("admin", "/no-such-page?level=city&code=421300")
    cockpit.wait_text("not-found-title", lambda s: s == "页面不存在")
    assert "404" not in cockpit.driver.find_element(By.TAG_NAME, "body").text  # no "404 - Page not found"
    assert cockpit.text("not-found-back") == "返回运行监测"
    cockpit.click("app-lang-toggle")
    cockpit.wait_text("not-found-title", lambda s: s == "Page not found")
    cockpit.wait_text("not-found-back", lambda s: s == "Back to the overview")
    cockpit.click("not-found-back")
    cockpit.wait_text("overview-scope-name", lambda s: s != "")
    assert cockpit.driver.execute_script("return window.location.pathname + window.location.search") == \
        "/?level=city&code=421300"  # back to the overview, at the scope the address carried


def _contrast(driver, element) -> tuple[float, str, str]:
    """The WCAG contrast of an element's text against the first opaque background behind it."""
    return driver.execute_script("""
        const rgb = c => c.match(/[\\d.]+/g).map(Number);
        const lum = ([r, g, b]) => {
            const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
            return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
        };
        // the element that holds the option's words (the deepest one with a text node of its own)
        let el = [arguments[0], ...arguments[0].querySelectorAll('*')].reverse().find(
            e => [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) || arguments[0];
        let bg = null;
        const fg = getComputedStyle(el).color;
        while (el) {
            const c = getComputedStyle(el).backgroundColor, v = rgb(c);
            if (v.length < 4 || v[3] > 0.9) { bg = c; break; }
            el = el.parentElement;
        }
        bg = bg || 'rgb(255, 255, 255)';
        const [a, b] = [lum(rgb(fg)), lum(rgb(bg))].sort((x, y) => y - x);
        return [(a + 0.05) / (b + 0.05), fg, bg];""", element)


def test_dropdown_options_are_readable_on_the_dark_theme(cockpit):
    cockpit.open_as("admin", f"/devices?level=county&code={ZENGDU}")
    cockpit.wait_text("devices-scope-name", lambda s: s == "曾都区")
    cockpit.wait_settled()
    cockpit.click(css="#devices-kind .dash-dropdown, #devices-kind")
    options = cockpit.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".dash-dropdown-option"),
                            "the options menu did not open")
    assert [o.text for o in options][:2] == ["全部类型", "触控一体机"]
    for option in options:
        ratio, fg, bg = _contrast(cockpit.driver, option)
        assert ratio >= 4.5, f"option {option.text!r}: {fg} on {bg} has contrast {ratio:.1f}"
