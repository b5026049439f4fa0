"""What every registry reached over an API shares, whatever the API: the remote shell.

Such a registry keeps what its API has no field for (owner, last-applied document, secret
fingerprints) in a state store, takes the store's lock for an apply, cannot roll back, and
so applies one call at a time, stops at the first failure and says what had been done.
The Sources API backend (`http.py`) and every provider (`providers/`) subclass
`RemoteRegistry` and write only their API calls.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from reconciler import progress
from reconciler.backends import base
from reconciler.backends.base import (
    DEFAULT_LOCK_TIMEOUT_S,
    ConnectOptions,
    Registry,
    RunEntry,
    SharedState,
    Writes,
    finished,
)
from reconciler.backends.remote.endpoints import Endpoint
from reconciler.backends.remote.state_store import Intent, RemoteRecordState, StateStore
from reconciler.backends.remote.transport import (
    AmbiguousWrite,
    HttpSettings,
    RetryPolicy,
    UnreadableAnswer,
)
from reconciler.errors import RegistryError
from reconciler.models import Record
from reconciler.redaction import REDACTOR, redact_url
from reconciler.secret_refs import fingerprint, is_reference

W = TypeVar("W")
# How services mask a secret in a response ("***"): never a value to compare.
MASKED = re.compile(r"^\*+$")


def unmasked(connection: Mapping[str, Any], last: Mapping[str, Any] | None) -> dict[str, Any]:
    """A masked value ("***") is not the value and must never look like a change.

    Its value is the one last applied: a secret reference stays unknown (None; planning
    compares the reference and the stored fingerprint instead), a literal is taken from the
    last-applied document. On a record this reconciler never applied, a masked value is
    unknown (None).
    """
    out: dict[str, Any] = {}
    for key, value in connection.items():
        out[key] = last_value(last, key) if is_masked(value) else value
    return out


def is_masked(value: Any) -> bool:
    return isinstance(value, str) and MASKED.match(value) is not None


def last_value(last: Mapping[str, Any] | None, key: str) -> Any:
    """What the last-applied document says of connection `key`, as a live value: a
    reference is unknown (None), a literal is itself."""
    previous = ((last or {}).get("connection") or {}).get(key)
    return None if previous is None or is_reference(previous) else previous


class RemoteRegistry(Registry, SharedState):
    """The Registry interface around an API; subclasses write `_endpoint` and `_connect`
    (the URLs they take, their API client) and `_update`, `_create`, `_replace` and
    `_delete`, each one remote change plus its state."""

    updates_in_place = False
    # How the apply summary names what `_update` does ("adopted" where it only adopts).
    update_word = "updated"
    # Whether the API has a place to mark the records this reconciler made (the Sources
    # API's tags); without one, a state store that knows nothing of the registry is blind.
    marks_owner: ClassVar[bool] = False

    def __init__(
        self,
        url: str,
        *,
        writable: bool,
        token: str | None,
        options: ConnectOptions | None = None,
        retry: RetryPolicy | None = None,
        concurrency: int = 16,
    ) -> None:
        options = options or ConnectOptions()
        where = self._endpoint(url)
        self.display_url = key = where.key
        self.writable = writable
        self._state = StateStore(options.state, key, writable=writable, keep_runs=options.keep_runs)
        # A state store on this machine's disk: it cannot lock out other machines' runs.
        self._local_default = options.state == ConnectOptions().state
        self._said: set[str] = set()
        # What long-running remote operations reported, for the run log's message.
        self.notes: list[str] = []
        # How deep in `locked()`: an apply's reads may record what they find (intents).
        self._held = 0
        # Casefolded names claimed from intents in this run, with their record ids.
        self._claimed: dict[str, str] = {}
        if token:
            REDACTOR.add(token)  # the last line of defence: no output ever shows it
        self._connect(where, token, HttpSettings(options.http_timeout, retry, concurrency))

    # -- what a subclass writes for its API ----------------------------------------------
    def _endpoint(self, url: str) -> Endpoint:
        """The registry URL taken apart (`endpoint`, with what this API's URLs look like)."""
        raise NotImplementedError

    def _connect(self, where: Endpoint, token: str | None, http: HttpSettings) -> None:
        """Make the API's client (the state store is open by now)."""
        raise NotImplementedError

    # -- state ---------------------------------------------------------------------------
    def exists(self) -> bool:
        """The API is there; an empty state store only means nothing was applied yet."""
        return True

    def init(self) -> int:
        return self._state.init()

    def declare_state(self) -> None:
        """`reconcile registry init`: the state store is this registry's from now on, so a
        first run against a registry that already has records is not refused as blind."""
        self._state.init()
        self._state.declare()

    def say(self, line: str) -> None:
        """A note or warning on stderr, once per run: never part of a report."""
        if line not in self._said:
            self._said.add(line)
            sys.stderr.write(line + "\n")

    def refuse_blind(self, count: int) -> None:
        """Refuse to plan from a state store that has never seen this registry when the
        registry holds records and its API cannot mark which are ours: every one would
        look unmanaged (a fresh CI runner with the default local state store)."""
        if self.marks_owner or count == 0 or self._state.knows_registry():
            return
        noun = "record" if count == 1 else "records"
        raise RegistryError(
            f"the state store {redact_url(self._state.url)} has no state for "
            f"{self.display_url}, which holds {count} {noun}: this run cannot tell which are "
            "its own (the API has no field to mark them). Give the state store the other "
            "runs share: --state postgresql://... or RECONCILER_STATE (to make this store "
            "the registry's from now on, run `reconcile registry init` once with the same "
            "--registry and --state)"
        )

    def known(self, owner: str) -> dict[str, str]:
        return self._state.known(owner)

    def fingerprint_key(self) -> bytes | None:
        return self._state.fingerprint_key()

    def applied_times(self) -> dict[str, datetime]:
        return self._state.applied_times()

    def record_run(self, run: RunEntry) -> None:
        self._state.record_run(run)

    def list_runs(self, limit: int = 20) -> list[RunEntry]:
        return self._state.list_runs(limit)

    def close(self) -> None:
        self._state.close()

    @contextmanager
    def locked(self, timeout: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[None]:
        """The state store's apply lock. Unlike a SQL registry's, it is not one transaction:
        API calls cannot be rolled back, so each state write commits as it is made, and a
        failure (or a kill) leaves state that says what was done."""
        if self._held:
            self._held += 1
            try:
                yield
            finally:
                self._held -= 1
            return
        if self._local_default and self.writable:
            self.say(
                f"warning: the state store {redact_url(self._state.url)} is local to this "
                "machine: this apply cannot lock out runs on other machines; share one with "
                "--state postgresql://... or RECONCILER_STATE"
            )
        with self._state.locked(timeout):
            self._held = 1
            try:
                yield
            finally:
                self._held = 0

    # -- applying ------------------------------------------------------------------------
    def apply(self, writes: Writes, run: RunEntry) -> None:
        """Updates, creates, replaces, then deletes, one call at a time; stops at the first
        failure, whose error says what had been done."""
        if not self.writable:
            raise RegistryError(f"registry {self.display_url} was opened read-only")
        steps: Sequence[tuple[str, Sequence[Any], Callable[[Any], None]]] = (
            (self.update_word, writes.updates, self._update),
            ("created", writes.creates, self._create),
            ("replaced", writes.replaces, self._replace),
            ("deleted", writes.deletes, self._delete),
        )
        done = {word: 0 for word, _, _ in steps}
        with self.locked():
            self._state.init()  # the state must be able to record a write before it is made
            try:
                for word, items, write in steps:
                    for item in items:
                        try:
                            write(item)
                        except UnreadableAnswer as exc:
                            if word != "created":
                                raise
                            self._adopt_created(item, exc)
                        done[word] += 1
                        progress.advance(1)
            except RegistryError as exc:
                if any(done.values()):
                    so_far = ", ".join(f"{n} {word}" for word, n in done.items())
                    raise type(exc)(f"{exc} (applied before the failure: {so_far})") from None
                raise
            message = "; ".join(m for m in (run.message, *self.notes) if m)
            self._state.record_run(replace(finished(run, datetime.now(UTC)), message=message))

    def list_records(self) -> list[Record]:
        raise NotImplementedError

    @contextmanager
    def _intended(self, new: base.NewRecord) -> Iterator[None]:
        """Around the call that creates `new`: its intent is committed first, and stays when
        the outcome is unknown (or the run dies before `remember`), so the next run can find
        the object. A create the server certainly refused leaves no intent."""
        self._state.intend(new)
        try:
            yield
        except AmbiguousWrite:
            raise
        except RegistryError:
            self._state.drop_intent(new)
            raise

    def _claim_intents(
        self, states: dict[str, RemoteRecordState], unowned: Callable[[], Sequence[Record]]
    ) -> dict[str, RemoteRecordState]:
        """`states`, plus the object each interrupted create left behind: the one unowned
        record with the intent's name whose values are what was sent. Inside an apply it is
        recorded as created at once; a plan shows it as owned, and writes nothing."""
        intents = self._state.intents()
        if not intents:
            return states
        key = self._state.fingerprint_key()
        out = dict(states)
        candidates = unowned()
        for intent in intents:
            found = [
                r for r in candidates if r.id not in out and r.name.casefold() == intent.name_key
            ]
            if len(found) != 1 or not sent(found[0], intent, key):
                continue
            record = found[0]
            out[record.id] = intent.state
            if self._held and self.writable:
                self._state.claim(record.id, intent)
                self._claimed[intent.name_key] = record.id
                self.notes.append(
                    f"'{record.name}': found record {record.id}, made by a create whose "
                    "outcome was not recorded, and recorded it as created"
                )
        return out

    def _adopt_created(self, new: base.NewRecord, unreadable: UnreadableAnswer) -> None:
        """A create the server answered with something unreadable (HTML, garbage) may have
        created the object all the same. Look for it at once, as the next run would: the one
        unowned object with its name holding what was sent is claimed from the intent and
        recorded as created; anything else is one actionable error, never an object the
        next run blocks on without saying why."""
        self._claimed.pop(new.name.casefold(), None)
        self.list_records()
        found = self._claimed.get(new.name.casefold())
        if found is not None:
            self._state.remember(found, new)
            return
        raise AmbiguousWrite(
            f"{unreadable}. '{new.name}' may have been created all the same: the next run "
            "records it as created if it finds it by name holding what was sent; if the "
            "next plan says a record with this name is not managed by reconciler, check it "
            "in the registry and adopt it with `reconcile import`, or delete it"
        ) from None

    def _delete_then_create(
        self,
        replace: base.RecordReplace,
        delete: Callable[[], None],
        *,
        noun: str,
        old: str,
        create: str = "create",
    ) -> None:
        """A replace as every API registry makes it: `delete` the old object, forget it, then
        create the new one; a create that fails then says the name is now missing."""
        name = replace.record.name
        delete()
        self._state.forget(replace.old_id)
        try:
            self._create(replace.record)
        except RegistryError as exc:
            raise RegistryError(
                f"replacing {noun} '{name}' failed half-way: its old {old} {replace.old_id} "
                f"was deleted, but {exc}. '{name}' is now missing from the registry; run "
                f"reconcile again to {create} it"
            ) from None

    def _update(self, update: base.RecordUpdate) -> None:
        raise NotImplementedError

    def _create(self, new: base.NewRecord) -> None:
        raise NotImplementedError

    def _replace(self, replace: base.RecordReplace) -> None:
        raise NotImplementedError

    def _delete(self, gone: base.RecordDelete) -> None:
        raise NotImplementedError


def sent(record: Record, intent: Intent, key: bytes | None) -> bool:
    """Whether a live record holds what an intent was about to send: its name and type, and
    each connection value sent that the API returns (a secret compared by its fingerprint;
    masked values and keys the server added are not compared)."""
    last = intent.state.last_applied
    if record.name != last.get("name") or record.source_type != last.get("source_type"):
        return False
    wanted = last.get("connection") or {}
    for name, value in record.connection.items():
        if value is None or is_masked(value) or name not in wanted:
            continue
        if is_reference(wanted[name]):
            stored = intent.state.fingerprints.get(f"connection.{name}")
            if key is None or stored is None or fingerprint(key, value) != stored:
                return False
        elif not _same(value, wanted[name]):
            return False
    return True


def _same(live: Any, sent: Any) -> bool:
    """Equal as sent: a mapping on the keys sent, a number the API turned into a string."""
    if isinstance(live, Mapping) and isinstance(sent, Mapping):
        return all(k in live and _same(live[k], v) for k, v in sent.items())
    if isinstance(live, Mapping | list) or isinstance(sent, Mapping | list):
        return bool(live == sent)
    return str(live).strip() == str(sent).strip()
