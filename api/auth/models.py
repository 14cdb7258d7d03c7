"""Users as the API sees them."""

from typing import Literal

from pydantic import BaseModel

Role = Literal["admin", "manager", "operations", "viewer"]
Level = Literal["province", "city", "county", "school", "community"]


class User(BaseModel):
    """An authenticated user and the scope that bounds everything they see."""

    username: str
    display_name: str
    role: Role
    scope_level: Level
    scope_code: str


class Token(BaseModel):
    """An OAuth2 bearer token."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
