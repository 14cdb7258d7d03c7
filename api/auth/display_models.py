"""Display links as the API shows them: what an administrator sends and reads, and what a wall
screen gets for its link (the table model is `api.registry.models.DisplayLink`)."""

from datetime import datetime
from typing import Annotated, Literal

import pydantic
from pydantic import AfterValidator, BaseModel, Strict

from api.auth.models import Token, User
from api.registry.models import Code, DisplayLinkBase, Name
from core.scope import Level

MAX_PAGES = 12
ROTATE_MIN_S, ROTATE_MAX_S = 5, 3600

WallPage = Annotated[str, pydantic.Field(pattern=r"^/[a-z0-9_/-]{0,63}$", examples=["/", "/equity"],
                                         description="a cockpit page by its path")]


def _distinct(pages: list[str]) -> list[str]:
    if len(set(pages)) != len(pages):
        raise ValueError("each page may appear once")
    return pages


class DisplayLinkCreate(BaseModel):
    """A link to issue: a label, one scope inside the administrator's, the pages in the order they rotate,
    and how many seconds each stays on screen."""

    model_config = pydantic.ConfigDict(extra="forbid")

    label: Name = pydantic.Field(examples=["指挥中心大屏"])
    scope_level: Level
    scope_code: Code
    pages: Annotated[list[WallPage], pydantic.Field(min_length=1, max_length=MAX_PAGES),
                     AfterValidator(_distinct)]
    rotate_s: Annotated[int, Strict(), pydantic.Field(ge=ROTATE_MIN_S, le=ROTATE_MAX_S)] = 60


class DisplayLinkPublic(DisplayLinkBase):
    """A link as administrators see it (never its secret)."""

    id: int
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None
    last_used_at: datetime | None


class DisplayLinkIssued(DisplayLinkPublic):
    """A link just issued, with its secret: shown this once, never stored."""

    key: str = pydantic.Field(description="the link's secret; only its SHA-256 is kept")
    wall_path: str = pydantic.Field(description="the cockpit path that opens the wall with this key "
                                                "(the key rides in the fragment, which no server receives)",
                                    examples=["/wall#key=dl_…"])


class DisplayUser(User):
    """The principal of a display link's token: reads its link's scope, never writes."""

    role: Literal["display"] = "display"  # type: ignore[assignment]  # a principal, not an account's role
    link_id: int


class DisplayLinkView(BaseModel):
    """What a wall screen shows, as its link says."""

    id: int
    label: str
    scope_level: Level
    scope_code: str
    scope_name: str | None
    pages: list[str]
    rotate_s: int


class DisplayToken(Token):
    """A short-lived read-only bearer token for a wall screen, its principal and its link."""

    user: DisplayUser
    link: DisplayLinkView
