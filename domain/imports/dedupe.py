"""Which record a row is: one already in the database, one an earlier row of the file made, or
a new one. The keys are the duplicate guard's (credit code, phone, email, folded company name)
plus, for companies with no exact match, a similar folded name (rapidfuzz, the lead intake's
threshold). Lookups go to the database once per chunk, not once per row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain import normalize
from domain.customer import Contact, Customer, Kind
from domain.errors import Invalid
from domain.follow_up import FollowUp
from domain.imports.columns import Entity
from domain.imports.history import event_key
from domain.imports.leads import KEYS as LEAD_KEYS
from domain.imports.name_index import NameIndex, RecordId
from domain.imports.rows import KEYS_OF, Checked, fold_name
from domain.lead.models import Lead
from domain.purchase import Purchase

FUZZY_PREFIX = 2
"""Similar names are looked for among those sharing their first characters (usually the city),
as lead intake does."""
CUSTOMER_KEYS = {
    "credit_code": Customer.credit_code,
    "phone": Customer.phone,
    "email": Customer.email,
    "name": Customer.name_key,
}
CONTACT_KEYS = {"mobile": Contact.mobile, "email": Contact.email}


@dataclass(frozen=True)
class Match:
    record_id: RecordId
    by: str


class Ambiguous(Exception):
    """The row's keys point at different records: it cannot tell which one it is."""

    def __init__(self, found: dict[RecordId, str]) -> None:
        self.found = found
        super().__init__(
            "matches several records ("
            + ", ".join(f"#{i} by {by}" if i > 0 else f"an earlier row by {by}"
                        for i, by in found.items())
            + "); merge them first or correct the row"
        )


async def stamp(session: AsyncSession, entity: Entity) -> list[Any] | None:
    """What changes whenever a customer is added, changed or removed (every write of the table
    moves its largest updated_at, its count or its largest id): whether the similar names a dry
    run saw are still all there are. None for entities that match no similar names."""
    if entity is not Entity.customers:
        return None
    count, top, latest = (await session.execute(
        select(func.count(), func.max(Customer.id), func.max(Customer.updated_at))
    )).one()
    return [count, top, latest]


class Index:
    """Known keys of one import pass: the database's (fetched per chunk) and the file's."""

    def __init__(self, entity: Entity, threshold: float) -> None:
        self.entity = entity
        self.threshold = threshold
        self.names_as_judged = False
        """The customers are as the dry run matched against: a row it found no similar name
        for has none now either (this pass's earlier rows are those it had seen, or fewer)."""
        self.answered: dict[tuple[str, str], RecordId] | None = None
        """The customers are as the dry run matched against: what the database answered it
        (every key this pass can ask was asked then) stands, instead of asking again."""
        self.keys: dict[tuple[str, str], RecordId | None] = {}
        """Every key asked of the database or given by a row: its record, None if none (yet)."""
        self.names: dict[str, NameIndex] = {}
        """Folded company names by their first characters, loaded once per prefix."""
        self.named: dict[RecordId, tuple[NameIndex, int]] = {}
        """Where a record an earlier row would create sits among the names (for `rebind`)."""
        self.customers: dict[tuple[str, str], RecordId | None] = {}
        """Contacts: the company a reference names; None when none or several."""

    def database_answers(self) -> dict[tuple[str, str], RecordId]:
        """The keys the database answered with a record, in a pass that wrote nothing (a dry
        run: every stored id is positive, every id an earlier row stands for negative)."""
        return {key: found for key, found in self.keys.items() if found is not None and found > 0}

    def _know(self, key: tuple[str, str], record_id: RecordId) -> None:
        """The first record found with a key keeps it."""
        if self.keys.get(key) is None:
            self.keys[key] = record_id

    @staticmethod
    def _scoped(checked: Checked, customer_id: int | None) -> list[tuple[str, str]]:
        """Contacts are the same only within one company."""
        if customer_id is None:
            return checked.keys
        return [(f"{customer_id}:{k}", v) for k, v in checked.keys]

    async def load(
        self, session: AsyncSession, rows: Iterable[Checked], customers: dict[int, int]
    ) -> None:
        """Fetch from the database the keys of these rows not asked about yet."""
        wanted: dict[str, set[str]] = defaultdict(set)
        for checked in rows:
            for key in self._scoped(checked, customers.get(checked.row)):
                if key not in self.keys:
                    self.keys[key] = None
                    wanted[key[0]].add(key[1])
        if self.answered is not None:
            for key, values in wanted.items():
                for value in values:
                    found = self.answered.get((key, value))
                    if found is not None:
                        self._know((key, value), found)
            return
        loaders = {
            Entity.customers: self._load_customers,
            Entity.contacts: self._load_contacts,
            Entity.leads: self._load_leads,
            Entity.follow_ups: self._load_follow_ups,
            Entity.purchases: self._load_purchases,
        }
        await loaders[self.entity](session, wanted)

    async def _load_customers(self, session: AsyncSession, wanted: dict[str, set[str]]) -> None:
        alive = Customer.deleted_at.is_(None)
        for key, column in CUSTOMER_KEYS.items():
            values = sorted(wanted.get(key, ()))
            for start in range(0, len(values), 500):
                query = select(column, Customer.id).where(
                    column.in_(values[start : start + 500]), alive
                )
                if key == "name":
                    query = query.where(Customer.kind == Kind.company.value)
                for value, record_id in (await session.execute(query.order_by(Customer.id))):
                    self._know((key, value), record_id)

    async def _load_contacts(self, session: AsyncSession, wanted: dict[str, set[str]]) -> None:
        by_customer: dict[str, dict[int, set[str]]] = defaultdict(lambda: defaultdict(set))
        for scoped, values in wanted.items():
            customer_id, key = scoped.split(":", 1)
            by_customer[key][int(customer_id)] |= values
        for key, per_customer in by_customer.items():
            column = CONTACT_KEYS.get(key)
            ids = sorted(per_customer)
            query = select(Contact.customer_id, Contact.id, column if column is not None
                           else Contact.name).where(Contact.customer_id.in_(ids))
            for customer_id, record_id, value in (await session.execute(query)).all():
                stored = fold_name(value) if column is None else value
                if stored in per_customer[customer_id]:
                    self._know((f"{customer_id}:{key}", stored), record_id)

    async def _load_leads(self, session: AsyncSession, wanted: dict[str, set[str]]) -> None:
        """Any lead with the key, open or closed: an imported list is never a new enquiry."""
        for key in LEAD_KEYS:
            column = getattr(Lead, key)
            values = sorted(wanted.get(key, ()))
            for start in range(0, len(values), 500):
                query = select(column, Lead.id).where(column.in_(values[start : start + 500]))
                for value, record_id in (await session.execute(query.order_by(Lead.id))):
                    self._know((key, value), record_id)

    @staticmethod
    def _per_customer(wanted: dict[str, set[str]]) -> dict[int, set[str]]:
        found: dict[int, set[str]] = defaultdict(set)
        for scoped, values in wanted.items():
            found[int(scoped.split(":", 1)[0])] |= values
        return found

    async def _load_follow_ups(
        self, session: AsyncSession, wanted: dict[str, set[str]]
    ) -> None:
        per_customer = self._per_customer(wanted)
        moments = {datetime.fromisoformat(v.split("|", 1)[0])
                   for values in per_customer.values() for v in values}
        if not per_customer:
            return
        query = select(FollowUp.customer_id, FollowUp.id, FollowUp.at, FollowUp.kind,
                       FollowUp.summary).where(FollowUp.customer_id.in_(sorted(per_customer)),
                                               FollowUp.at.in_(sorted(moments)))
        for customer_id, record_id, at, kind, summary in (await session.execute(query)).all():
            key = event_key(at, kind, summary)
            if key in per_customer[customer_id]:
                self._know((f"{customer_id}:event", key), record_id)

    async def _load_purchases(self, session: AsyncSession, wanted: dict[str, set[str]]) -> None:
        for customer_id, references in self._per_customer(wanted).items():
            query = select(Purchase.reference, Purchase.id).where(
                Purchase.customer_id == customer_id, Purchase.reference.in_(sorted(references))
            )
            for reference, record_id in (await session.execute(query)).all():
                self._know((f"{customer_id}:reference", reference), record_id)

    async def _names_with(self, session: AsyncSession, prefix: str) -> NameIndex:
        if prefix not in self.names:
            rows = await session.execute(
                select(Customer.name_key, Customer.id).where(
                    Customer.kind == Kind.company.value,
                    Customer.deleted_at.is_(None),
                    Customer.name_key.startswith(prefix, autoescape=True),
                )
            )
            names = self.names[prefix] = NameIndex()
            for name, record_id in rows.all():
                names.add(name, record_id)
        return self.names[prefix]

    async def match(
        self, session: AsyncSession, checked: Checked, customer_id: int | None = None
    ) -> Match | None:
        """The record this row is, or None for a new one; Ambiguous if it could be several."""
        found: dict[RecordId, str] = {}
        for (key, _value), scoped in zip(
            checked.keys, self._scoped(checked, customer_id), strict=True
        ):
            record_id = self.keys.get(scoped)
            if record_id is not None:
                found.setdefault(record_id, key)
                if self.entity is not Entity.customers:
                    break  # the strongest key decides (two 王芳 may share a name)
        if len(found) > 1:
            raise Ambiguous(found)
        if found:
            record_id, by = next(iter(found.items()))
            return Match(record_id, by)
        if self.entity is Entity.customers and checked.record and (
            checked.record["kind"] == Kind.company.value
        ):
            name_key = checked.record["name_key"]
            if self.names_as_judged and checked.no_similar_name:
                # Still load its names: `remember` adds this row's to them, for later rows.
                await self._names_with(session, name_key[:FUZZY_PREFIX])
                return None
            return await self._similar(session, name_key)
        return None

    async def _similar(self, session: AsyncSession, name_key: str) -> Match | None:
        """A company whose folded name is nearly this one. Names that differ in their numbers
        (3号店 and 5号店, 第一 and 第二 aside) are different companies, never similar."""
        names = await self._names_with(session, name_key[:FUZZY_PREFIX])
        found = names.best(name_key, self.threshold)
        return None if found is None else Match(found[0], f"name ~{found[1]:.0f}%")

    @staticmethod
    def _company(checked: Checked) -> str | None:
        record = checked.record
        return record["name_key"] if record and record["kind"] == Kind.company.value else None

    def remember(
        self, checked: Checked, record_id: RecordId, customer_id: int | None = None
    ) -> None:
        """Later rows with these keys are this record."""
        for scoped in self._scoped(checked, customer_id):
            self._know(scoped, record_id)
        name_key = self._company(checked) if self.entity is Entity.customers else None
        names = self.names.get(name_key[:FUZZY_PREFIX]) if name_key else None
        if name_key and names is not None:
            self.named[record_id] = (names, names.add(name_key, record_id))

    def learn(self, checked: Checked, record_id: RecordId, customer_id: int | None,
              record: dict[str, Any]) -> None:
        """A row merged into a record: its keys the record now holds are the record's."""
        held = set(KEYS_OF[self.entity](record))
        for key, scoped in zip(checked.keys, self._scoped(checked, customer_id), strict=True):
            if key in held:
                self._know(scoped, record_id)

    def rebind(
        self, checked: Checked, temporary: RecordId, record_id: RecordId,
        customer_id: int | None = None,
    ) -> None:
        """The record an earlier `remember` named by a temporary id now has its real one."""
        for scoped in self._scoped(checked, customer_id):
            if self.keys.get(scoped) == temporary:
                self.keys[scoped] = record_id
        if temporary in self.named:
            names, position = self.named.pop(temporary)
            names.ids[position] = record_id


async def resolve_customers(
    session: AsyncSession, rows: Iterable[Checked], cache: dict[tuple[str, str], int | None]
) -> None:
    """Fill `cache` with the company each contact row names (by credit code or exact folded
    name): an id, or None when no live company, or several, go by that name."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for checked in rows:
        if checked.customer_ref and checked.customer_ref not in cache:
            wanted[checked.customer_ref[0]].add(checked.customer_ref[1])
    for key, values in wanted.items():
        column = Customer.credit_code if key == "credit_code" else Customer.name_key
        found: dict[str, list[int]] = defaultdict(list)
        ordered = sorted(values)
        for start in range(0, len(ordered), 500):
            query = select(column, Customer.id).where(
                column.in_(ordered[start : start + 500]),
                Customer.deleted_at.is_(None),
                Customer.kind == Kind.company.value,
            )
            for value, customer_id in (await session.execute(query)).all():
                found[value].append(customer_id)
        for value in values:
            ids = found.get(value, [])
            cache[(key, value)] = ids[0] if len(ids) == 1 else None


def _name_keys(name: str) -> tuple[str | None, str]:
    """A customer name as companies (folded) and persons (lower-case) store their name_key."""
    try:
        company = normalize.company_key(name)
    except Invalid:
        company = None
    return company, name.lower()


async def resolve_any_customers(
    session: AsyncSession, rows: Iterable[Checked], cache: dict[tuple[str, str], int | None]
) -> None:
    """Fill `cache` with the customer (company or person) each history row names by credit
    code, phone or exact name: an id, or None when no live customer, or several, go by it."""
    for checked in rows:
        ref = checked.customer_ref
        if ref is None or ref in cache:
            continue
        key, value = ref
        alive = Customer.deleted_at.is_(None)
        if key == "name":
            company, person = _name_keys(value)
            clauses = [and_(Customer.kind == Kind.person.value, Customer.name_key == person)]
            if company:
                clauses.append(and_(Customer.kind == Kind.company.value,
                                    Customer.name_key == company))
            query = select(Customer.id).where(or_(*clauses), alive)
        else:
            column = Customer.credit_code if key == "credit_code" else Customer.phone
            query = select(Customer.id).where(column == value, alive)
        ids = list((await session.scalars(query.limit(2))).all())
        cache[ref] = ids[0] if len(ids) == 1 else None
