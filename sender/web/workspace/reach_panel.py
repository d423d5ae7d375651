"""The launch confirmation's figures: a count in the background, shown once it is done.

The page never counts in the request (at a million supporters that takes
seconds): it shows the wave's fresh count (sender.send.reach_counts), or
starts one through run_in_background and shows a panel that htmx polls.
"""

from __future__ import annotations

from datetime import timedelta

from sender.celery_app import REACH_TASK
from sender.core.errors import Forbidden
from sender.ops import status
from sender.send.reach_counts import ReachCountView, count_reach, start_count
from sender.staff.actions import What
from sender.staff.audit import allowed
from sender.web import context
from sender.web.actors import current_actor
from sender.web.workspace import subject_form
from sender.web.workspace.background import run_in_background


def current_count(wave: status.WaveName, *, again: bool = False) -> ReachCountView:
    """The count to show: the fresh one, the one counting, or one started now."""
    engine = context.engine()
    cap = timedelta(hours=context.settings().frequency_cap_hours)
    count, started = start_count(engine, wave.wave_id, context.clock().now(), cap, again=again)
    if started:
        wave_id, attempt = wave.wave_id, count.attempt
        run_in_background(
            REACH_TASK,
            [wave_id, attempt],
            lambda: count_reach(engine, wave_id, attempt, cap),
            f"reach-{wave_id}",
        )
    return count


def check_may_count(wave: status.WaveName) -> None:
    """Counting again is for those who may launch (it loads the database for seconds).

    It changes no campaign data, so, like reading the page, it is not audited,
    neither done nor refused: a refusal is the 403 page alone.
    """
    actor = current_actor()
    if not allowed(actor, What.WAVE_LAUNCH, wave.campaign_id):
        raise Forbidden(f"counting again needs the right to launch; {actor.name} has not")


def panel(wave: status.WaveName, count: ReachCountView) -> dict[str, object]:
    """What templates/web/workspace/waves/_reach.html reads."""
    reach = count.reach
    return {
        "wave": wave,
        "count": count,
        "reach": reach,
        "split": reach.split() if reach is not None else None,
        "gaps": subject_form.stored_gaps(context.engine(), wave.wave_id),
    }
