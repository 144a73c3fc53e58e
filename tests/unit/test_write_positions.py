"""Each account's last write position, as the read-replica router remembers it: in one process, or shared by
every process of the host through the limiter's memory-mapped table."""
from __future__ import annotations

from pathlib import Path

import pytest

from geoservice.limiter import LimiterStateError, SharedTable
from geoservice.store.postgis.replicas import EVERYTHING, PIN_S, LocalPositions, SharedPositions, WritePositions

HIGH = (0xFFFF_FFFE << 32) | 0xFFFF_FFF0  # a position past 2**53: a float alone would round it


def _both(tmp_path: Path) -> list[tuple[WritePositions, WritePositions]]:
    """(writer, reader) pairs: one process's memory, and two tables mapping one file (as two workers do)."""
    local = LocalPositions()
    path = tmp_path / "state.bin"
    return [(local, local), (SharedPositions(SharedTable(path)), SharedPositions(SharedTable(path)))]


@pytest.mark.parametrize("pair", [0, 1], ids=["one process", "shared by the host"])
def test_a_position_counts_for_its_account_until_it_expires(tmp_path: Path, pair: int) -> None:
    writer, reader = _both(tmp_path)[pair]
    writer.put("operator:alice", HIGH, 1000.0)
    assert reader.get("operator:alice", 1000.0 + PIN_S - 1) == HIGH
    assert reader.get("operator:bob", 1000.0) is None
    assert reader.get("operator:alice", 1000.0 + PIN_S + 1) is None


@pytest.mark.parametrize("pair", [0, 1], ids=["one process", "shared by the host"])
def test_an_earlier_position_never_replaces_a_later_one_still_counting(tmp_path: Path, pair: int) -> None:
    writer, reader = _both(tmp_path)[pair]
    writer.put("token:script", 5_000, 1000.0)
    writer.put("token:script", 4_000, 1010.0)  # another worker's older write
    assert reader.get("token:script", 1010.0) == 5_000
    assert reader.get("token:script", 1000.0 + PIN_S + 5) == 5_000  # renewed
    writer.put("token:script", 3_000, 1000.0 + 3 * PIN_S)  # after it expired
    assert reader.get("token:script", 1000.0 + 3 * PIN_S) == 3_000


def test_a_folder_that_cannot_hold_the_state_leaves_positions_to_the_process(tmp_path: Path,
                                                                              caplog: pytest.LogCaptureFixture
                                                                              ) -> None:
    """A CLI run with read replicas configured where the state file cannot be made still runs (the web app
    stops at start then: its rate limits need the same file); it says read-your-writes is per process."""
    from geoservice.store.postgis import PostgisStore

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = PostgisStore("postgresql://127.0.0.1:9/none", min_size=0, read_urls=["postgresql://127.0.0.1:9/ro"],
                         shared_state_dir=blocker / "state")
    try:
        assert store.replicas is not None and isinstance(store.replicas.positions, LocalPositions)
        assert "read-your-writes across processes is off" in caplog.text
    finally:
        store.close()


def test_a_state_file_gone_bad_fails_no_write_and_sends_reads_to_the_primary(tmp_path: Path) -> None:
    """After the write committed, an unusable state file must not turn it into an error; and a read that cannot
    learn the account's last write must not go to a standby that may be behind it."""
    table = SharedTable(tmp_path / "state.bin")

    def broken(*args: object, **kwargs: object) -> None:
        raise LimiterStateError("rate-limit state: No such file or directory")

    table.update = broken  # type: ignore[method-assign]
    table.read = broken  # type: ignore[method-assign]
    positions = SharedPositions(table)
    positions.put("operator:alice", HIGH, 1000.0)  # no exception
    assert positions.get("operator:alice", 1000.0) == EVERYTHING > HIGH
