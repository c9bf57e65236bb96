"""The "Dedup: Review duplicates" panel: one duplicate group at a time, its
members side by side, and the review decisions of :mod:`review`.

The panel only translates between the App and :mod:`review`: everything it
decides is stored on the samples (see :mod:`review`), so it can be closed
and reopened, and its panel state holds only the result shown, the position
and a pending confirmation. Groups are read one at a time; the order of
100,000 groups is a list of keys cached in the server process.

Open it from the operator browser ("Dedup: Review duplicates", operator
:class:`OpenReviewPanel`) or the "+" menu of the grid's panels.
"""

import os
import urllib.parse

import fiftyone.operators as foo
import fiftyone.operators.types as types

from . import review, review_groups
from .review_results import RESULTS, available_results

PANEL_NAME = "review_duplicates"
OPERATOR_NAME = "open_review_panel"
LABEL = "Dedup: Review duplicates"
DESCRIPTION = "Review duplicate groups side by side: keep all, keep one, tag or delete the others"
ICON = "/assets/groups.svg"
IMAGE_HEIGHT = "260px"
MEMBERS_PER_PAGE = 6
STORE = "dedup_review"
# the result shown first: the one whose groups most need a look
DEFAULT_ORDER = ("approx", "approx_leak", "exact_leak", "exact")
HELP = (
    "Review duplicate groups one at a time, most doubtful first. **Keep all** remembers that "
    "the samples are not duplicates (stored in `dedup_kept_apart`), **Keep this one** marks "
    "the others to delete, **Apply** deletes every marked sample in one bulk delete. "
    "Keyboard: Tab to **Next** (or **Previous**) and press Space; the button keeps the focus, "
    "so each Space steps on once the panel has redrawn. The group slider takes arrow keys, but the App rebuilds it after "
    "each step, so focus it again for the next one."
)
NO_RESULT = (
    "### No duplicates to review\n\nRun **Dedup: Find exact duplicates** or **Dedup: Find "
    "approximate duplicates** (or a leakage check) first, then press **Refresh**."
)


def media_url(filepath: str) -> str:
    """The App server's URL of a local media file (its ``/media`` route)."""
    return "/media?filepath=" + urllib.parse.quote(filepath, safe="")


def _size(num_bytes) -> str:
    if num_bytes is None:
        return "? KB"
    if num_bytes >= 1 << 20:
        return f"{num_bytes / (1 << 20):.1f} MB"
    return f"{num_bytes / 1024:.0f} KB"


def caption(member: review_groups.Member, group: review_groups.Group) -> str:
    """The markdown under a member's image."""
    if member.id == group.keeper:
        role = "**★ reference (kept)**" if member.is_reference else "**★ kept**"
        if member.is_representative and not member.is_reference:
            role = "**★ representative (kept)**"
    elif member.is_representative:
        role = "representative" if not member.is_reference else "reference"
    else:
        role = "duplicate" if not RESULTS[group.result].leak else "leaked"
    if member.delete_for:
        role += " · **marked to delete**"
    if member.protected:
        role += " · kept (not duplicates)"
    lines = [role]
    if not member.is_representative:
        lines.append(f"distance {member.dist:.4f}" if member.dist is not None else "distance ?")
    if member.score is not None:
        lines.append(f"score {member.score:.3f}")
    size = f"{member.width} × {member.height}" if member.width else "? × ?"
    lines.append(f"{size} · {_size(member.size_bytes)}")
    lines.append(f"`{os.path.basename(member.filepath)}`")
    return "  \n".join(lines)


class ReviewDuplicatesPanel(foo.Panel):
    """One duplicate group at a time, with the review decisions."""

    @property
    def config(self):
        return foo.PanelConfig(name=PANEL_NAME, label=LABEL, icon=ICON, help_markdown=HELP, surfaces="grid")

    # -- state --------------------------------------------------------------

    def on_load(self, ctx):
        results = available_results(ctx.dataset)
        result = ctx.panel.state.result
        if result not in results:
            result = self._store(ctx).get("result")
        if result not in results:
            preferred = [r for r in DEFAULT_ORDER if r in results]
            result = preferred[0] if preferred else None
        self._show(ctx, result, self._store(ctx).get(f"position:{result}"))

    def on_change_dataset(self, ctx):
        ctx.panel.state.result = None
        self.on_load(ctx)

    def _store(self, ctx):
        return ctx.store(STORE)

    def _show(self, ctx, result, key=None, index=None):
        """Shows ``result`` at group ``key`` (or ``index``), with a fresh token."""
        state = ctx.panel.state
        state.set({"result": result, "confirm": None, "member_page": 0, "message": None})
        if result is None:
            state.set({"token": None, "index": 0})
            return
        token = review_groups.result_token(ctx.dataset, result)
        order = review_groups.group_order(ctx.dataset, result, token)
        if index is None:
            index = max(order.position(key), 0) if key else 0
        self._goto(ctx, order, index, token)

    def _order(self, ctx):
        state = ctx.panel.state
        if not state.result:
            return None
        return review_groups.group_order(ctx.dataset, state.result, state.token)

    def _goto(self, ctx, order, index, token=None, from_slider=False):
        index = min(max(int(index), 0), max(len(order) - 1, 0))
        values = {"index": index, "confirm": None, "member_page": 0, "message": None}
        if not from_slider:
            # a new slider (new name) starts at the new position; the slider
            # the user is moving is never written back, else its change events
            # would echo back and forth
            values["slider"] = (ctx.panel.state.slider or 0) + 1
            values["slider_start"] = index + 1
        if token is not None:
            values["token"] = token
        ctx.panel.state.set(values)
        if len(order):
            store = self._store(ctx)
            store.set("result", order.result)
            store.set(f"position:{order.result}", order.keys[index])

    def _group(self, ctx):
        order = self._order(ctx)
        if order is None or not len(order):
            return order, None
        index = min(ctx.panel.state.index or 0, len(order) - 1)
        return order, review_groups.load_group(ctx.dataset, order.result, order.keys[index])

    def _refresh_after_delete(self, ctx):
        order = self._order(ctx)
        key = order.keys[ctx.panel.state.index or 0] if order is not None and len(order) else None
        self._show(ctx, ctx.panel.state.result, key)
        ctx.ops.reload_dataset()

    # -- events ---------------------------------------------------------------

    def on_change_result(self, ctx):
        result = ctx.params.get("value")
        self._show(ctx, result, self._store(ctx).get(f"position:{result}"))

    def refresh(self, ctx):
        ctx.panel.state.message = None
        self.on_load(ctx)

    def next_group(self, ctx):
        order = self._order(ctx)
        if order is not None:
            self._goto(ctx, order, (ctx.panel.state.index or 0) + 1)

    def previous_group(self, ctx):
        order = self._order(ctx)
        if order is not None:
            self._goto(ctx, order, (ctx.panel.state.index or 0) - 1)

    def next_unreviewed(self, ctx):
        order = self._order(ctx)
        if order is None:
            return
        start = ctx.panel.state.index or 0
        for step in range(1, len(order) + 1):
            index = (start + step) % len(order)
            if order.keys[index] not in order.reviewed:
                self._goto(ctx, order, index)
                return
        ctx.panel.state.message = "Every group is reviewed"

    def on_change_position(self, ctx):
        order = self._order(ctx)
        value = ctx.params.get("value")
        if order is not None and value is not None and int(value) - 1 != ctx.panel.state.index:
            self._goto(ctx, order, int(value) - 1, from_slider=True)

    def next_members(self, ctx):
        ctx.panel.state.member_page = (ctx.panel.state.member_page or 0) + 1

    def previous_members(self, ctx):
        ctx.panel.state.member_page = max((ctx.panel.state.member_page or 0) - 1, 0)

    def keep_all(self, ctx):
        _, group = self._group(ctx)
        if group is not None and group.members:
            review.keep_all(ctx.dataset, group)
            ctx.panel.state.message = f"Kept all {len(group.members)}: not duplicates"

    def keep_this(self, ctx):
        _, group = self._group(ctx)
        sample_id = ctx.params.get("sample_id")
        if group is not None and sample_id in group.ids:
            n = review.keep_one(ctx.dataset, group, sample_id)
            ctx.panel.state.message = f"Keeping one; {n} marked to delete"

    def tag_others(self, ctx):
        _, group = self._group(ctx)
        if group is not None and group.members:
            n = review.tag_others(ctx.dataset, group)
            ctx.panel.state.message = f"Tagged {n} samples '{review.DEFAULT_TAG}'"
            ctx.ops.reload_dataset()

    def undo(self, ctx):
        _, group = self._group(ctx)
        if group is not None and group.members:
            review.undo(ctx.dataset, group)
            ctx.panel.state.message = "Decision undone"

    def ask_delete_others(self, ctx):
        ctx.panel.state.confirm = "delete_others"

    def ask_apply(self, ctx):
        ctx.panel.state.confirm = "apply"

    def cancel(self, ctx):
        ctx.panel.state.confirm = None

    def confirm_delete_others(self, ctx):
        _, group = self._group(ctx)
        n = review.delete_others(ctx.dataset, group) if group is not None else 0
        self._refresh_after_delete(ctx)
        ctx.panel.state.message = f"Deleted {n} samples"

    def confirm_apply(self, ctx):
        n = review.apply_decisions(ctx.dataset)
        self._refresh_after_delete(ctx)
        ctx.panel.state.message = f"Applied the reviewed decisions: deleted {n} samples"

    # -- layout -----------------------------------------------------------------

    def render(self, ctx):
        panel = types.Object()
        state = ctx.panel.state
        results = available_results(ctx.dataset)
        if not state.result or state.result not in results:
            panel.md(NO_RESULT, name="no_result")
            panel.btn("refresh", label="Refresh", icon="refresh", on_click=self.refresh)
            return types.Property(panel, view=types.GridView(orientation="vertical", gap=2, padding=2))
        order, group = self._group(ctx)
        self._header(ctx, panel, results, order)
        if group is None:
            panel.md("No groups left in this result.", name="empty")
        elif not group.members:
            panel.md("This group no longer exists (its samples were deleted). Press **Refresh**.",
                     name="gone")
        else:
            self._members(ctx, panel, group)
            self._actions(ctx, panel, group)
        if state.message:
            panel.md(f"_{state.message}_", name="message")
        if order is not None and len(order) > 1:
            panel.arrow_nav("arrows", forward=state.index < len(order) - 1, backward=state.index > 0,
                            on_forward=self.next_group, on_backward=self.previous_group,
                            position="center")
        return types.Property(panel, view=types.GridView(orientation="vertical", gap=1, padding=2))

    def _header(self, ctx, panel, results, order):
        state = ctx.panel.state
        top = panel.h_stack("top", align_y="center", gap=2)
        menu = types.DropdownView(label="Result")
        for name in results:
            menu.add_choice(name, label=RESULTS[name].label)
        top.str("result", default=state.result, view=menu, on_change=self.on_change_result)
        marked = review.count_marked_to_delete(ctx.dataset)
        total, reviewed = len(order), len(order.reviewed)
        top.md(
            f"**Group {state.index + 1 if total else 0} of {total}** · "
            f"{total - reviewed} left to review · {reviewed} reviewed · "
            f"**{marked}** samples marked to delete",
            name="summary",
        )
        top.btn("apply", label=f"Apply: delete {marked} marked", icon="delete_sweep",
                variant="contained", disabled=marked == 0, on_click=self.ask_apply)
        top.btn("refresh", label="Refresh", icon="refresh", on_click=self.refresh)
        if state.confirm == "apply":
            self._confirm(panel, f"Delete the {marked} samples marked to delete? "
                          "This cannot be undone.", self.confirm_apply)
        nav = panel.h_stack("nav", align_y="center", gap=1)
        nav.btn("previous", label="Previous", icon="chevron_left", disabled=state.index <= 0,
                on_click=self.previous_group)
        nav.btn("next", label="Next", icon="chevron_right", icon_position="right",
                disabled=state.index >= total - 1, on_click=self.next_group)
        nav.btn("next_unreviewed", label="Next unreviewed", icon="skip_next",
                on_click=self.next_unreviewed)
        if total > 1:
            # keeps its name (and the keyboard focus) while the user moves it
            panel.int(f"position_{state.slider or 0}", min=1, max=total, default=state.slider_start or 1,
                      label="Group",
                      description="Drag, or focus the slider and use the arrow keys",
                      on_change=self.on_change_position,
                      view=types.SliderView(componentsProps={
                          "slider": {"min": 1, "max": total, "step": 1, "valueLabelDisplay": "auto"}}))

    def _members(self, ctx, panel, group):
        state = ctx.panel.state
        res = RESULTS[group.result]
        doubt = [m.dist for m in group.members if m.dist is not None and not m.is_representative]
        title = f"{res.label}: {len(group.members)} samples"
        if res.dist_field and doubt:
            title += f", farthest {max(doubt):.4f} from the representative"
        if group.reviewed:
            title += " · **reviewed**"
        if group.missing_reference:
            title += " · its references are not in this dataset"
        panel.md(title, name="group_title")
        pages = max((len(group.members) - 1) // MEMBERS_PER_PAGE + 1, 1)
        page = min(state.member_page or 0, pages - 1)
        shown = group.members[page * MEMBERS_PER_PAGE:(page + 1) * MEMBERS_PER_PAGE]
        row = panel.h_stack("members", gap=2, align_y="top")
        for k, member in enumerate(shown):
            col = row.v_stack(f"member_{k}", gap=0.5, align_x="left")
            col.view("image", types.ImageView(height=IMAGE_HEIGHT, alt=os.path.basename(member.filepath)),
                     default=media_url(member.filepath))
            col.md(caption(member, group), name="caption")
            col.btn("keep_this", label="Keep this one", icon="check",
                    variant="contained" if member.id == group.keeper else "outlined",
                    on_click=self.keep_this, params={"sample_id": member.id})
        if pages > 1:
            more = panel.h_stack("member_pages", align_y="center")
            more.btn("previous_members", label="Previous members", disabled=page == 0,
                     on_click=self.previous_members)
            more.md(f"members {page * MEMBERS_PER_PAGE + 1}–{page * MEMBERS_PER_PAGE + len(shown)} "
                    f"of {len(group.members)}", name="member_range")
            more.btn("next_members", label="More members", disabled=page >= pages - 1,
                     on_click=self.next_members)

    def _actions(self, ctx, panel, group):
        others = [i for i in group.others() if not any(m.id == i and m.protected for m in group.members)]
        actions = panel.h_stack("actions", gap=1, align_y="center")
        actions.btn("keep_all", label="Keep all (not duplicates)", icon="done_all", on_click=self.keep_all)
        actions.btn("tag_others", label=f"Tag the others '{review.DEFAULT_TAG}'", icon="local_offer",
                    on_click=self.tag_others)
        actions.btn("delete_others", label=f"Delete the others ({len(others)})", icon="delete",
                    disabled=not others, on_click=self.ask_delete_others)
        if group.reviewed:
            actions.btn("undo", label="Undo decision", icon="undo", on_click=self.undo)
        if ctx.panel.state.confirm == "delete_others":
            self._confirm(panel, f"Delete {len(others)} samples now, keeping only the one marked ★? "
                          "This cannot be undone.", self.confirm_delete_others)

    def _confirm(self, panel, text, on_confirm):
        box = panel.h_stack("confirm", align_y="center", gap=1)
        box.view("question", types.Warning(label=text))
        box.btn("confirm_yes", label="Delete", icon="delete_forever", variant="contained",
                on_click=on_confirm)
        box.btn("confirm_no", label="Cancel", on_click=self.cancel)


class OpenReviewPanel(foo.Operator):
    """Opens the review panel from the operator browser."""

    @property
    def config(self):
        return foo.OperatorConfig(name=OPERATOR_NAME, label=LABEL, description=DESCRIPTION, icon=ICON)

    def execute(self, ctx):
        ctx.ops.open_panel(PANEL_NAME, is_active=True)
        return {}
