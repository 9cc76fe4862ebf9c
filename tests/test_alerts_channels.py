"""A channel is one subscriber whichever thread `alerts on` is typed in, and its alerts are new posts in the
channel (a thread of their own), never replies inside the thread where someone once typed."""

from __future__ import annotations

from dataclasses import asdict

from dialogs.alerts import state as st
from tests.support.botapp import channel_chat
from tests.support.cards import assert_valid_card
from tests.support.graph_standin.alerts_world import alerts_world


def _thread(w, n: int):
    return channel_chat(w.channel.team_id, w.channel.channel_id, message_id=f"17000000000{n:02d}")


async def test_alerts_on_in_two_threads_is_one_subscription_and_alerts_start_their_own_thread(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        first, second, third = _thread(w, 1), _thread(w, 2), _thread(w, 3)
        await w.say("alerts on --tenant T0", conversation=first)
        await w.say("alerts on high --tenant T0", conversation=second)
        [sub] = await st.subscriptions(w.services.storage)
        assert (sub.conversation_id, sub.level) == (w.channel.id, "high")
        said = w.bot.replies(second.id)[-1]
        assert said.kind == "reply" and said.reply_to_id and "(Was: medium and above.)" in said.text
        assert "has not stored how to reach" not in said.text  # the channel's reference came with the thread

        detection = w.detect(0, 1, minutes_ago=1, level="high")
        [result] = await w.poll()
        assert (result.status, result.conversation) == ("sent", w.channel.id)
        alert = w.bot.replies(w.channel.id)[-1]
        assert alert.kind == "send" and alert.reply_to_id is None and alert.body["conversation"]["id"] == w.channel.id
        assert_valid_card(alert.cards[0])
        assert detection["userId"] in str(alert.cards[0])
        assert [c.kind for c in w.bot.replies(first.id)] == ["reply"]  # the threads got only their answers
        assert [c.kind for c in w.bot.replies(second.id)] == ["reply"]

        await w.say("alerts off", conversation=third)
        assert await st.subscriptions(w.services.storage) == []
        assert "no longer be posted here" in w.bot.replies(third.id)[-1].text


async def test_a_subscription_kept_under_a_thread_id_is_folded_into_the_channels(tmp_path) -> None:
    async with alerts_world(tmp_path) as w:
        old = _thread(w, 4)
        legacy = st.Subscription(
            tenant_id=w.tenant_ids[0],
            tenant_name="T0",
            conversation_id=old.id,
            conversation_kind="channel",
            level="low",
            created_by="earlier version",
            created_at="2026-01-01T00:00:00Z",
        )
        await w.services.storage.put(st.sub_key(legacy.tenant_id, old.id), asdict(legacy), None)
        assert await st.mark_broken(w.services.storage, w.channel.id, "removed", w.clock.now) == 1  # by channel
        await w.say("alerts on --tenant T0", conversation=_thread(w, 5))
        [sub] = await st.subscriptions(w.services.storage)
        assert sub.conversation_id == w.channel.id and sub.working and sub.level == "medium"
        text = w.bot.replies(_thread(w, 5).id)[-1].text
        assert "had stopped" in text  # what the folded subscription was
