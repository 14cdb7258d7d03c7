"""The cockpit's words in Chinese (default) and English, and Chinese number formatting."""

STRINGS: dict[str, dict[str, str]] = {
    "title": {"zh": "教育信息化数字驾驶舱", "en": "Education Technology Cockpit"},
    "nav.overview": {"zh": "运行监测", "en": "Operations"},
    "login": {"zh": "登录", "en": "Log in"},
    "logout": {"zh": "退出", "en": "Log out"},
    "username": {"zh": "用户名", "en": "Username"},
    "password": {"zh": "密码", "en": "Password"},
    "login.failed": {"zh": "登录失败:用户名或密码错误", "en": "Login failed: wrong username or password"},
    "devices": {"zh": "设备总数", "en": "Devices"},
    "online": {"zh": "在线设备", "en": "Online"},
    "online_rate": {"zh": "在线率", "en": "Online rate"},
    "board": {"zh": "触控一体机", "en": "Touch boards"},
    "recorder": {"zh": "录播教室", "en": "Recording rooms"},
    "gateway": {"zh": "校园网关", "en": "Gateways"},
    "by_kind": {"zh": "分类在线情况", "en": "Online by device kind"},
    "children": {"zh": "下级在线率", "en": "Online rate of each child"},
    "offline": {"zh": "离线", "en": "Offline"},
    "province": {"zh": "省", "en": "Province"},
    "city": {"zh": "市(州)", "en": "City"},
    "county": {"zh": "县(市、区)", "en": "County"},
    "school": {"zh": "学校", "en": "School"},
    "community": {"zh": "教联体", "en": "Community"},
    "name": {"zh": "名称", "en": "Name"},
    "as_of": {"zh": "数据时间", "en": "As of"},
    "empty": {"zh": "暂无数据", "en": "No data"},
    "loading": {"zh": "加载中…", "en": "Loading…"},
    "login.required": {"zh": "请先登录", "en": "Please log in"},
}


def t(key: str, lang: str = "zh") -> str:
    """The word for a key in the chosen language (the key itself if unknown)."""
    entry = STRINGS.get(key)
    return entry.get(lang, entry["zh"]) if entry else key


def fmt_count(n: int | float | None, lang: str = "zh") -> str:
    """A count the Chinese way (1.2万 from ten thousand up), or with thousands separators in English."""
    if n is None:
        return "—"
    if lang == "zh" and abs(n) >= 10_000:
        return f"{n / 10_000:.1f}万" if abs(n) < 100_000_000 else f"{n / 100_000_000:.2f}亿"
    return f"{n:,.0f}"


def fmt_rate(r: float | None) -> str:
    """A rate as a percentage with one decimal."""
    return "—" if r is None else f"{r * 100:.1f}%"
