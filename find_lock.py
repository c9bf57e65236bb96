"""One find at a time per dataset: a second find (another process, a
delegated run, a second App tab) while one runs is refused with a clear
message instead of interleaving the two results.

The lock is a document in FiftyOne's own database (collection
:data:`COLLECTION`), inserted atomically under the dataset's id and removed
when the find ends. A find killed before it could remove it leaves it
behind: a lock whose process is gone (same host) or that has not been
renewed for :data:`STALE_AFTER` (another host; a find renews it as it
reports progress) is taken over.
"""

import datetime
import logging
import os
import socket
import uuid
from contextlib import contextmanager
from typing import Callable, Iterator

import pymongo.errors

import fiftyone as fo
import fiftyone.core.odm as foo

logger = logging.getLogger(__name__)

COLLECTION = "dedup_find_locks"
STALE_AFTER = datetime.timedelta(minutes=30)
RENEW_EVERY = datetime.timedelta(minutes=1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _process_is_gone(holder: dict) -> bool:
    if holder.get("host") != socket.gethostname():
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, owned by another user
        return False
    return False


def _is_stale(holder: dict) -> bool:
    return _process_is_gone(holder) or _now() - holder["updated"] > STALE_AFTER


def _busy_message(dataset: fo.Dataset, holder: dict) -> str:
    return (
        f"Another duplicate find is running on dataset '{dataset.name}' (process "
        f"{holder['pid']} on {holder['host']}, started {holder['started']:%Y-%m-%d %H:%M:%S} "
        "UTC); wait for it to finish, then run this find again"
    )


@contextmanager
def held(dataset: fo.Dataset) -> Iterator[Callable[[], None]]:
    """Holds the dataset's find lock for the block.

    Returns:
        a context yielding ``renew()``, which marks the lock as alive (cheap:
        it writes at most once per :data:`RENEW_EVERY`)

    Raises:
        ValueError: if another live find holds it
    """
    locks = foo.get_db_conn()[COLLECTION]
    key = str(dataset._doc.id)
    now = _now()
    mine = {"_id": key, "token": uuid.uuid4().hex, "host": socket.gethostname(),
            "pid": os.getpid(), "started": now, "updated": now}
    try:
        locks.insert_one(mine)
    except pymongo.errors.DuplicateKeyError:
        _take_over_stale(locks, dataset, mine)
    last = [now]

    def renew() -> None:
        if _now() - last[0] >= RENEW_EVERY:
            last[0] = _now()
            locks.update_one({"_id": key, "token": mine["token"]}, {"$set": {"updated": last[0]}})

    try:
        yield renew
    finally:
        locks.delete_one({"_id": key, "token": mine["token"]})


def _take_over_stale(locks, dataset: fo.Dataset, mine: dict) -> None:
    holder = locks.find_one({"_id": mine["_id"]})
    if holder is None:  # released meanwhile
        locks.insert_one(mine)
        return
    if not _is_stale(holder):
        raise ValueError(_busy_message(dataset, holder))
    # only replace the holder we judged stale: two takers can't both win
    if locks.find_one_and_replace({"_id": mine["_id"], "token": holder["token"]}, mine) is None:
        raise ValueError(_busy_message(dataset, holder))
    logger.info("Took over the find lock of dataset '%s' left by process %s", dataset.name,
                holder["pid"])
