"""The password policy: what a password must be, and the passwords the platform generates.

A password is refused, with the reason in Chinese and English, when it is shorter than
API_PASSWORD_MIN_LENGTH (default 10) or longer than API_PASSWORD_MAX_LENGTH, lacks either a
letter or a digit, contains the username, or is a common one: a well-known password, or a
well-known word or keyboard row padded with digits and symbols ("Password2024!", "qwerty12345"),
which guessing tools try first. The same check runs wherever a password is chosen: an
administrator creating a user or resetting a password, and a user changing their own.

A generated password (a new user's, a reset one) passes the policy and must be changed at the
next login (`app_user.must_change_password`), so nobody but its holder knows it for long.
"""

import re
import secrets

from fastapi import HTTPException, status

from api.settings import api_settings

# Passwords and their letter stems that guessing tools try first (lower case).
COMMON_PASSWORDS = frozenset("""
password passw0rd password1 password123 1234567890 12345678910 0123456789 1q2w3e4r5t 1qaz2wsx3edc
qwertyuiop qwerty123 qwerty1234 zaq12wsx abc1234567 a123456789 admin12345 admin123456 woaini1314
iloveyou1 welcome123 p@ssw0rd123 123456789a 123456789q q1w2e3r4t5 1a2b3c4d5e a1b2c3d4e5
""".split())
COMMON_STEMS = frozenset("""
a aa aaa ab abc abcd abcde abcdef abcdefg admin administrator asd asdf asdfg asdfgh qaz qazwsx
qwe qwer qwert qwerty qwertyuiop wsx zaq zaqwsx zxc zxcv zxcvb zxcvbn zxcvbnm pass passw passwd
password passwort welcome letmein iloveyou woaini test tester root user guest login changeme
default master secret system super superman dragon monkey china beijing shanghai
""".split())
# Letters and digits that cannot be mistaken for one another when read out or copied by hand.
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"
_LETTER, _DIGIT = re.compile(r"[^\W\d_]"), re.compile(r"\d")


class PolicyError(ValueError):
    """A password the policy refuses, with the reason in both languages."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en

    def __str__(self) -> str:
        return f"{self.zh} / {self.en}"


def check(password: str, username: str) -> None:
    """Nothing when the password satisfies the policy; PolicyError saying why otherwise."""
    settings = api_settings()
    least, most = settings.password_min_length, settings.password_max_length
    if len(password) < least:
        raise PolicyError(f"密码至少需要 {least} 个字符", f"the password must have at least {least} characters")
    if len(password) > most:
        raise PolicyError(f"密码最多 {most} 个字符", f"the password must have at most {most} characters")
    if not (_LETTER.search(password) and _DIGIT.search(password)):
        raise PolicyError("密码须同时包含字母和数字", "the password must contain both letters and digits")
    lowered = password.lower()
    if len(username) >= 3 and username.lower() in lowered:
        raise PolicyError("密码不能包含用户名", "the password must not contain the username")
    stems = {re.sub(r"[^a-z]", "", text) for text in (lowered, lowered.replace("@", "a").replace("0", "o"))}
    if lowered in COMMON_PASSWORDS or stems & COMMON_STEMS or len(set(lowered)) <= 3:
        raise PolicyError("密码过于常见，容易被猜中", "the password is too common and easy to guess")


def enforce(password: str, username: str) -> None:
    """`check` as an HTTP answer: 422 with the reason in Chinese and English."""
    try:
        check(password, username)
    except PolicyError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


def generate(username: str) -> str:
    """A random password that satisfies the policy (at least 16 characters, letters and digits)."""
    length = max(16, api_settings().password_min_length)
    while True:
        password = "".join(secrets.choice(_ALPHABET) for _ in range(length))
        try:
            check(password, username)
        except PolicyError:
            continue
        return password
