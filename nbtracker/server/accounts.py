"""Users, API keys and projects: what the admin commands change and every request checks.

Keys are `nbt_` + 40 URL-safe random characters, shown once. The database keeps only their
sha256 (hex) and a public id — the first 8 characters after `nbt_` — that `key ls` shows and
`key revoke` takes. A key works while it is not revoked and its user is not disabled.

A user sees a project they own or were added to; an admin sees every project. A project a
user may not see does not exist for them (404, whatever the request).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..store import layout
from .db import insert_ignore
from .schema import api_keys, members, projects, runs, users

KEY_PREFIX = "nbt_"
ADMIN_NAME = "admin"


class AccountError(ValueError):
    """A user, project or key named that does not exist or clashes."""


@dataclass(frozen=True)
class User:
    id: int
    name: str
    admin: bool


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    """A random key. Its public id (the 8 characters after the prefix) is typed on command lines
    (`nbtracker key revoke ID`), so it never starts with '-', which would read as an option."""
    while True:
        body = secrets.token_urlsafe(30)
        if not body.startswith("-"):
            return KEY_PREFIX + body


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= 64 or not name.isprintable() \
            or name.strip() != name:
        raise AccountError(f"user name {name!r} is not valid: 1-64 printable characters")
    return name


# -- users -----------------------------------------------------------------------------------

def create_user(conn: Connection, name: str, admin: bool = False) -> tuple[User, str]:
    """A new user and their first key (returned once, never stored)."""
    check_user_name(name)
    if not insert_ignore(conn, users, {"name": name, "admin": admin, "disabled": False,
                                       "created": time.time()}):
        raise AccountError(f"user {name!r} exists")
    user = find_user(conn, name)
    return user, create_key(conn, user)


def find_user(conn: Connection, name: str) -> User:
    row = conn.execute(sa.select(users).where(users.c.name == name)).mappings().first()
    if row is None:
        raise AccountError(f"no user {name!r}")
    return User(row["id"], row["name"], bool(row["admin"]))


def list_users(conn: Connection) -> list[dict]:
    q = sa.select(users.c.name, users.c.admin, users.c.disabled, users.c.created).order_by(users.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def disable_user(conn: Connection, name: str) -> None:
    user = find_user(conn, name)
    conn.execute(sa.update(users).where(users.c.id == user.id).values(disabled=True))


def has_users(conn: Connection) -> bool:
    return conn.execute(sa.select(users.c.id).limit(1)).first() is not None


def create_first_admin(conn: Connection) -> str | None:
    """When there is no user yet: create `admin` and return its key (else None)."""
    if has_users(conn):
        return None
    return create_user(conn, ADMIN_NAME, admin=True)[1]


# -- keys ------------------------------------------------------------------------------------

def create_key(conn: Connection, user: User) -> str:
    while True:
        key = new_key()
        n = insert_ignore(conn, api_keys, {"key_id": key[len(KEY_PREFIX):][:8], "hash": hash_key(key),
                                           "user_id": user.id, "created": time.time()})
        if n:  # a clash of public ids (1 in 2**48) just draws again
            return key


def user_for_key(conn: Connection, key: str) -> User | None:
    """The user a key belongs to, if the key is known, not revoked and its user enabled."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    q = (sa.select(users.c.id, users.c.name, users.c.admin)
         .join(api_keys, api_keys.c.user_id == users.c.id)
         .where(api_keys.c.hash == hash_key(key), api_keys.c.revoked.is_(None),
                users.c.disabled.is_(False)))
    row = conn.execute(q).first()
    return User(row.id, row.name, bool(row.admin)) if row else None


def list_keys(conn: Connection, user: str | None = None) -> list[dict]:
    q = (sa.select(api_keys.c.key_id, users.c.name.label("user"), api_keys.c.created,
                   api_keys.c.revoked)
         .join(users, users.c.id == api_keys.c.user_id).order_by(api_keys.c.id))
    if user is not None:
        q = q.where(users.c.name == user)
    return [dict(r) for r in conn.execute(q).mappings()]


def revoke_key(conn: Connection, key_id: str) -> None:
    n = conn.execute(sa.update(api_keys).where(api_keys.c.key_id == key_id,
                                               api_keys.c.revoked.is_(None))
                     .values(revoked=time.time())).rowcount
    if not n:
        raise AccountError(f"no active key {key_id!r} (see `nbtracker key ls`)")


# -- projects --------------------------------------------------------------------------------

def check_project_name(name: str) -> str:
    try:
        return layout.check_project(name)
    except ValueError as e:
        raise AccountError(str(e)) from None


def create_project(conn: Connection, name: str, owner: User) -> int:
    check_project_name(name)
    if not insert_ignore(conn, projects, {"name": name, "owner_id": owner.id,
                                          "created": time.time()}):
        raise AccountError(f"project {name!r} exists")
    return _project_id(conn, name)


def _project_id(conn: Connection, name: str) -> int | None:
    return conn.execute(sa.select(projects.c.id).where(projects.c.name == name)).scalar()


def visible_project(conn: Connection, user: User, name: str) -> int | None:
    """The id of project `name` if `user` may see it (owner, member or admin), else None."""
    q = sa.select(projects.c.id, projects.c.owner_id).where(projects.c.name == name)
    row = conn.execute(q).first()
    if row is None:
        return None
    if user.admin or row.owner_id == user.id:
        return row.id
    q = sa.select(members.c.user_id).where(members.c.project_id == row.id,
                                           members.c.user_id == user.id)
    return row.id if conn.execute(q).first() else None


def writable_project(conn: Connection, user: User, name: str) -> int | None:
    """Like `visible_project`, but a project that does not exist yet is created, owned by
    `user` (the first upload creates it)."""
    pid = visible_project(conn, user, name)
    if pid is not None:
        return pid
    # Insert, or wait for the transaction that is inserting it to end, then look again: one
    # that created it after the first look (perhaps for this same user) has committed by now
    # and the second look sees it (READ COMMITTED; on SQLite writers run one at a time).
    insert_ignore(conn, projects, {"name": name, "owner_id": user.id, "created": time.time()})
    return visible_project(conn, user, name)


def list_projects(conn: Connection, user: User | None = None) -> list[dict]:
    """Projects with owner and run count; those `user` may see (all when None)."""
    n_runs = (sa.select(sa.func.count()).where(runs.c.project_id == projects.c.id)
              .scalar_subquery())
    q = (sa.select(projects.c.name, users.c.name.label("owner"), n_runs.label("runs"))
         .join(users, users.c.id == projects.c.owner_id).order_by(projects.c.name))
    if user is not None and not user.admin:
        member = sa.select(members.c.project_id).where(members.c.user_id == user.id)
        q = q.where(sa.or_(projects.c.owner_id == user.id, projects.c.id.in_(member)))
    return [dict(r) for r in conn.execute(q).mappings()]


def add_member(conn: Connection, project: str, user_name: str) -> None:
    pid = _existing_project(conn, project)
    insert_ignore(conn, members, {"project_id": pid, "user_id": find_user(conn, user_name).id})


def remove_member(conn: Connection, project: str, user_name: str) -> None:
    pid = _existing_project(conn, project)
    user = find_user(conn, user_name)
    conn.execute(sa.delete(members).where(members.c.project_id == pid,
                                          members.c.user_id == user.id))


def _existing_project(conn: Connection, name: str) -> int:
    pid = _project_id(conn, name)
    if pid is None:
        raise AccountError(f"no project {name!r}")
    return pid
