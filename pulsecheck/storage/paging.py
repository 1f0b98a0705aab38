"""One page of a list, cut in SQL: LIMIT/OFFSET for the rows and one COUNT for the total, shared by every list
(CLI lists, the inbox, the web app's tables)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Select, func, select

from pulsecheck.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

T = TypeVar("T")
U = TypeVar("U")


class PageRequest(NamedTuple):  # not a dataclass: cheaper to make at every start-up (issue 17)
    """Which rows: at most `limit` (None: all) after skipping `offset`, in the order named `sort` (None: the
    list's default)."""

    limit: int | None = None
    offset: int = 0
    sort: str | None = None


class Page(NamedTuple, Generic[T]):  # not a dataclass: cheaper to make at every start-up (issue 17)
    """Rows of one page and the total number of rows the filters matched."""

    items: list[T]
    total: int
    offset: int = 0
    limit: int | None = None

    @property
    def remaining(self) -> int:
        """How many matching rows come after this page."""
        return max(0, self.total - self.offset - len(self.items))

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        """The same page with each row converted (a model row to its JSON shape)."""
        return Page([convert(item) for item in self.items], self.total, self.offset, self.limit)

    def to_dict(self) -> dict[str, Any]:
        """The `--json` shape of every list: the rows and where they sit in the whole."""
        return {"total": self.total, "offset": self.offset, "limit": self.limit, "items": self.items}


# A sort name -> the ORDER BY clauses; each list puts its own unique key last so pages never overlap.
Sorts = Mapping[str, Sequence[Any]]


AnySelect = Select[*tuple[Any, ...]]


def fetch_page(
    session: Session | Connection, query: AnySelect, request: PageRequest, sorts: Sorts, *, scalars: bool = True,
    count: AnySelect | None = None, total: int | None = None,
) -> Page[Any]:
    """Run `query` (filters applied, no ORDER BY) for one page in the order `request.sort` names (the first of
    `sorts` by default); the total comes from a COUNT over the same filters (or over `count`, the same filters
without the joins that only add columns), or is `total` when the caller already counted the same rows (in an
aggregate it ran anyway)."""
    name = request.sort or next(iter(sorts))
    if name not in sorts:
        raise InputError(f"--sort {name!r}: choose from {', '.join(sorts)}")
    if request.offset < 0 or (request.limit is not None and request.limit < 0):
        raise InputError("--limit and --offset cannot be negative")
    if total is None:
        counted = (query if count is None else count).order_by(None).subquery()
        total = session.scalar(select(func.count()).select_from(counted)) or 0
    ordered = query.order_by(*sorts[name]).offset(request.offset or None)
    if request.limit is not None:
        ordered = ordered.limit(request.limit)
    items: list[Any] = list(session.scalars(ordered)) if scalars else list(session.execute(ordered))
    return Page(items, total, request.offset, request.limit)


def fetch_by_key(
    session: Session | Connection, keys: AnySelect, request: PageRequest, sorts: Sorts,
    load: Callable[[list[Any]], Mapping[Any, T]],
) -> Page[T]:
    """A page cut over the primary keys alone (`keys` selects one key column, filters applied), then only that
    page's rows loaded by `load` (key -> row), in the page's order. Deep offsets walk a covering index instead
    of reading every skipped row."""
    page = fetch_page(session, keys, request, sorts)
    found = load(page.items) if page.items else {}
    return Page([found[key] for key in page.items if key in found], page.total, page.offset, page.limit)
