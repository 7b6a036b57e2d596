"""Big stores: tables fill in batches (the screen is usable at once), and a screen reads and fills once per change."""

from __future__ import annotations

from seed import SIZE, at, make_app, seed_state
from textual.app import App, ComposeResult

from always_on.core.records import PlanContent, PlanRecord, PlanStatus
from always_on.core.storage import Store
from always_on.tui.screens.backlog import BacklogScreen
from always_on.tui.widgets.table import BatchedFill, RowTable

PLANS = 2_500
STATUSES = [PlanStatus.READY, PlanStatus.COMPLETED, PlanStatus.APPLIED, PlanStatus.FAILED]


def seed_many(project, n: int = PLANS) -> list[str]:
    """n plans written in one transaction (what n save_plan calls would leave); ids oldest first."""
    store = Store().project(project)
    seed_state(store)
    plans = {}
    for i in range(n):
        plan = PlanRecord(
            id=f"plan-{i:05d}",
            project_id=store.project_id,
            status=STATUSES[i % len(STATUSES)],
            content=PlanContent(
                title=f"Fix thing {i}",
                summary="s",
                rationale="r",
                dedupe_key=f"key-{i}",
                proposed_change="c",
                steps=["a"],
                verification=["b"],
            ),
            created_at=at(-n + i),
            updated_at=at(-n + i),
        )
        plans[plan.id] = plan
    store.save_plans(list(plans.values()))
    return list(plans)


async def settle(pilot, done, limit: int = 400) -> None:
    for _ in range(limit):
        if done():
            return
        await pilot.pause()
    raise AssertionError("the table never finished filling")


async def test_backlog_of_thousands_reads_once_fills_once_and_completes(project):
    ids = seed_many(project)
    app = make_app(project)
    reads = []
    plans = app.bridge.plans
    app.bridge.plans = lambda: reads.append(1) or plans()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, BacklogScreen)
        assert f"{PLANS} of {PLANS} plans" in str(screen.query_one("#count").render())
        await settle(pilot, lambda: not screen.filling)
        table = screen.table
        assert table.row_count == PLANS
        assert table.get_row_index(ids[-1]) == 0 and table.get_row_index(ids[0]) == PLANS - 1  # newest first
        assert len(reads) == 1, "opening the screen read the plans more than once"
        assert screen._batches.generation == 1, "opening the screen filled the table more than once"

        table.move_cursor(row=PLANS - 1)
        await pilot.pause()
        assert screen.highlighted().id == ids[0]
        assert ids[0] in str(screen.query_one("#plan-detail").render())
        await pilot.resize_terminal(*SIZE)  # same width: nothing to redo
        await pilot.pause()
        assert screen._batches.generation == 1
        await pilot.resize_terminal(80, 24)  # narrower: columns change, the cursor stays on its plan
        await settle(pilot, lambda: screen._batches.generation == 2 and not screen.filling)
        assert len(table.columns) == 4 and table.row_count == PLANS
        assert screen.highlighted().id == ids[0]

        await pilot.press("1", "2")  # back from another screen: read again, nothing changed, no refill
        await pilot.pause()
        assert len(reads) == 2 and screen._batches.generation == 2

        screen.set_filter("failed")
        await settle(pilot, lambda: screen.filter == "failed" and not screen.filling)
        assert table.row_count == PLANS // 4
        assert {str(table.get_row_at(i)[0]) for i in range(table.row_count)} == {"failed"}


class TableApp(App[None]):
    def compose(self) -> ComposeResult:
        yield RowTable(id="t")


COLUMNS = [("n", "N", 10), ("v", "Value", 10)]


def rows(n: int, prefix: str = "r") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def make_row(item: str) -> tuple[str, list]:
    return item, [item, item.upper()]


async def test_batched_fill_adds_the_first_rows_at_once_and_the_rest_after_refreshes():
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(RowTable)
        fill = BatchedFill(table, first=5, batch=10)
        fill.fill(COLUMNS, rows(37), make_row)
        assert table.row_count == 5 and fill.pending
        await settle(pilot, lambda: not fill.pending)
        assert table.row_count == 37
        assert [str(table.get_row_at(i)[0]) for i in (0, 5, 15, 36)] == ["r0", "r5", "r15", "r36"]


async def test_batched_fill_puts_the_cursor_back_on_its_row_even_in_a_later_batch():
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(RowTable)
        fill = BatchedFill(table, first=5, batch=10)
        fill.fill(COLUMNS, rows(37), make_row)
        await settle(pilot, lambda: not fill.pending)
        table.move_cursor(row=30)
        fill.fill(COLUMNS, ["new", *rows(37)], make_row)  # r30 is now row 31, added by a later batch
        await settle(pilot, lambda: not fill.pending)
        assert table.cursor_row == 31


async def test_batched_fill_leaves_a_cursor_the_user_moved_while_rows_arrived():
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(RowTable)
        fill = BatchedFill(table, first=5, batch=10)
        fill.fill(COLUMNS, rows(37), make_row)
        await settle(pilot, lambda: not fill.pending)
        table.move_cursor(row=30)
        fill.fill(COLUMNS, rows(37), make_row)
        table.move_cursor(row=2)  # the user moves before r30's batch arrives
        await settle(pilot, lambda: not fill.pending)
        assert table.cursor_row == 2


async def test_a_new_fill_cancels_the_batches_of_the_previous_one():
    app = TableApp()
    async with app.run_test() as pilot:
        table = app.query_one(RowTable)
        fill = BatchedFill(table, first=5, batch=10)
        fill.fill(COLUMNS, rows(50), make_row)
        fill.fill(COLUMNS, rows(23, "s"), make_row)  # would raise DuplicateKey if the old batches went on
        await settle(pilot, lambda: not fill.pending)
        for _ in range(5):
            await pilot.pause()
        assert table.row_count == 23 and str(table.get_row_at(22)[0]) == "s22"
