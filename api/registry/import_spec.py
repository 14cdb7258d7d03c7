"""What an import workbook holds: its sheets, their columns, the codes a coded column takes.

One table describes the file, so the reader, the checks, the template and the documentation
agree. Every sheet and column has a Chinese name (what a bureau's spreadsheets use) and an
English one; either is accepted, in any mix, and a header is matched without regard to case,
spaces or brackets (`出口带宽(Mbps)` is `出口带宽Mbps`). A coded column takes the Chinese
label or the stored English value (`城区` or `urban`).

Limits are those of the columns the values end in (integer, text without U+0000, dates in
1900–2999) and what the registry's readers expect (lengths that fit a page and a cell, codes
the API's paths accept, coordinates inside China).
"""

from dataclasses import dataclass, field

INT_MAX = 2**31 - 1  # integer columns
MIN_YEAR, MAX_YEAR = 1900, 2999  # dates, as the API's inputs accept them (api/inputs.py)
# China's extent, generously: 曾母暗沙 at 3.9°N to 漠河 at 53.6°N, 帕米尔 at 73.5°E to 抚远 at 135.1°E.
LATITUDE = (3.0, 54.0)
LONGITUDE = (73.0, 136.0)

SCHOOL_CODE = r"^[0-9]{10}$"
DIVISION_CODE = r"^[0-9]{6}$"
DEVICE_ID = r"^[A-Za-z0-9_-]{3,64}$"  # device_all's check and the MQTT topics' key
COMMUNITY_CODE = r"^[A-Za-z0-9_-]{1,32}$"  # what the API's paths accept as a code
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$"


@dataclass(frozen=True)
class Column:
    """One column of a sheet.

    kind: text (free text), code (matched against `pattern`), choice (one of `choices`),
    int, float, date or password. `required`: the header must be there; `blank_ok`: a cell
    may be empty.
    """

    key: str
    zh: str
    kind: str = "text"
    required: bool = True
    blank_ok: bool = False
    pattern: str | None = None
    max_len: int | None = None
    choices: dict[str, str] = field(default_factory=dict)  # Chinese label -> stored value
    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    example: object = None
    note_zh: str = ""
    note_en: str = ""

    def accepts(self) -> dict[str, str]:
        """Every spelling the column takes (Chinese label or stored value) -> stored value."""
        return {**{v: v for v in self.choices.values()}, **self.choices}


@dataclass(frozen=True)
class Sheet:
    """One sheet: its names, its columns and the natural key identifying a row's record."""

    key: str
    zh: str
    columns: tuple[Column, ...]
    natural_key: tuple[str, ...]

    def column(self, key: str) -> Column:
        return next(c for c in self.columns if c.key == key)


# A blank optional cell leaves the stored value (importer.py); the notes say so column by column.
KEEP_ZH, KEEP_EN = "留空：保留已登记的值（新记录为空）", "blank: the stored value stays (none for a new record)"

LOCALES = {"城区": "urban", "镇区": "town", "乡村": "rural"}
STAGES = {"小学": "primary", "初中": "junior", "九年一贯制": "nine_year", "完全中学": "complete",
          "高中": "senior", "教学点": "teaching_point"}
DEVICE_KINDS = {"一体机": "board", "录播教室": "recorder", "校园网关": "gateway"}
DEVICE_STATUS = {"在用": "active", "退役": "retired"}
COMMUNITY_KINDS = {"融合型": "merged", "共建型": "co_built", "协作型": "collaborative", "融合+共建型": "mixed"}
MEMBER_ROLES = {"牵头": "lead", "成员": "member"}
USER_ROLES = {"管理员": "admin", "管理者": "manager", "运维": "operations", "查看者": "viewer"}
SCOPE_LEVELS = {"省": "province", "市": "city", "县": "county", "校": "school", "教联体": "community"}

SCHOOLS = Sheet("schools", "学校", (
    Column("code", "学校标识码", "code", pattern=SCHOOL_CODE, example="6103020001",
           note_zh="10 位数字", note_en="10 digits"),
    Column("name", "学校名称", max_len=100, example="宝鸡市渭滨区示范小学"),
    Column("county_code", "区县代码", "code", pattern=DIVISION_CODE, example="610302",
           note_zh="6 位行政区划代码", note_en="6-digit administrative division code"),
    Column("locale", "城乡类型", "choice", choices=LOCALES, example="城区"),
    Column("stage", "学段", "choice", choices=STAGES, example="小学"),
    Column("classes", "班级数", "int", low=0, high=INT_MAX, example=24),
    Column("students", "学生数", "int", low=0, high=INT_MAX, example=1080),
    Column("teachers", "教师数", "int", low=0, high=INT_MAX, example=62),
    Column("uplink_mbps", "出口带宽Mbps", "int", low=0, high=INT_MAX, low_inclusive=False, example=1000),
    Column("longitude", "经度", "float", blank_ok=True, low=LONGITUDE[0], high=LONGITUDE[1], example=107.1496,
           note_zh="与纬度同时填写或同时留空；" + KEEP_ZH, note_en="with the latitude, or neither; " + KEEP_EN),
    Column("latitude", "纬度", "float", blank_ok=True, low=LATITUDE[0], high=LATITUDE[1], example=34.3620,
           note_zh="与经度同时填写或同时留空；" + KEEP_ZH, note_en="with the longitude, or neither; " + KEEP_EN),
), ("code",))

DEVICES = Sheet("devices", "设备", (
    Column("id", "设备编号", "code", pattern=DEVICE_ID, example="B6103020001-001",
           note_zh="3–64 位字母、数字、_ 或 -", note_en="3–64 letters, digits, _ or -"),
    Column("kind", "设备类型", "choice", choices=DEVICE_KINDS, example="一体机"),
    Column("school_code", "学校标识码", "code", pattern=SCHOOL_CODE, example="6103020001"),
    Column("room", "教室", max_len=64, example="一年级1班"),
    Column("vendor", "厂商", max_len=64, example="希沃"),
    Column("model", "型号", max_len=64, example="MC86"),
    Column("installed_on", "安装日期", "date", blank_ok=True, example="2023-09-01", note_zh=KEEP_ZH, note_en=KEEP_EN),
    Column("status", "状态", "choice", required=False, blank_ok=True, choices=DEVICE_STATUS, example="在用",
           note_zh="退役：设备退役；在用：退役的设备恢复在用；留空：不变",
           note_en="retired retires the device; active brings a retired one back; blank: unchanged"),
), ("id",))

COMMUNITIES = Sheet("communities", "教联体", (
    Column("code", "教联体编号", "code", pattern=COMMUNITY_CODE, example="C610302001"),
    Column("name", "教联体名称", max_len=100, example="渭滨区示范小学教联体"),
    Column("kind", "类型", "choice", choices=COMMUNITY_KINDS, example="融合型"),
    Column("school_code", "学校标识码", "code", pattern=SCHOOL_CODE, example="6103020001"),
    Column("role", "角色", "choice", choices=MEMBER_ROLES, example="牵头",
           note_zh="每个教联体恰有一所牵头学校；文件列出全部成员，未列出的成员退出",
           note_en="exactly one lead per community; the file lists every member, unlisted members leave"),
    Column("founded_on", "成立日期", "date", required=False, blank_ok=True, example="2024-09-01", note_zh=KEEP_ZH,
           note_en=KEEP_EN),
), ("code", "school_code"))

USERS = Sheet("users", "用户", (
    Column("username", "用户名", "code", pattern=USERNAME, example="weibin_admin",
           note_zh="2–64 位字母、数字或 _ . @ -，以字母或数字开头",
           note_en="2–64 letters, digits or _ . @ -, starting with a letter or digit"),
    Column("display_name", "姓名", max_len=64, example="渭滨区教育局"),
    Column("role", "角色", "choice", choices=USER_ROLES, example="管理者"),
    Column("scope_level", "范围级别", "choice", choices=SCOPE_LEVELS, example="县"),
    Column("scope_code", "范围代码", "code", pattern=r"^[A-Za-z0-9_-]{1,32}$", example="610302"),
    Column("password", "初始密码", "password", required=False, blank_ok=True, max_len=128, example="",
           note_zh="留空则自动生成（只显示一次）；已有用户保留原密码",
           note_en="blank: generated (shown once); an existing user keeps their password"),
), ("username",))

DIVISIONS = Sheet("divisions", "区划", (
    Column("code", "行政区划代码", "code", pattern=DIVISION_CODE, example="610305"),
    Column("name", "名称", max_len=50, example="凤翔区"),
    Column("parent_code", "上级代码", "code", blank_ok=True, pattern=DIVISION_CODE, example="610300",
           note_zh="省级留空", note_en="blank for a province"),
), ("code",))

SHEETS: tuple[Sheet, ...] = (DIVISIONS, SCHOOLS, DEVICES, COMMUNITIES, USERS)  # the order they are applied in
SHEET_BY_KEY = {s.key: s for s in SHEETS}


@dataclass(frozen=True)
class Issue:
    """One thing wrong with a file: where (sheet as named in the file, spreadsheet row as Excel
    shows it, column as headed in the file) and why, in Chinese and English."""

    sheet: str
    row: int
    column: str | None
    reason_zh: str
    reason_en: str

    def as_dict(self) -> dict:
        return {"sheet": self.sheet, "row": self.row, "column": self.column,
                "reason_zh": self.reason_zh, "reason_en": self.reason_en}


class FileError(ValueError):
    """The file cannot be read at all (not XLSX or CSV, broken, too large); nothing is imported."""

    def __init__(self, zh: str, en: str, *, too_large: bool = False) -> None:
        super().__init__(en)
        self.zh, self.en, self.too_large = zh, en, too_large
