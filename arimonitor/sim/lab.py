"""Local channels and the sim's `lab` dialplan: what the ;2 half of a Local pair does.

The extensions of ../shared/ari/asterisk-conf/extensions.conf (context `lab`): answer, ringanswer,
hold, echo, busy, congestion, noanswer, reject. `Calls` (calls.py) creates the pair and hands it
here when it is dialled; the Dial events, Stasis and the hangups go back through `Calls`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arimonitor.sim.core import Pbx
from arimonitor.sim.state import Channel

if TYPE_CHECKING:
    from arimonitor.sim.calls import Calls

LAB = ("answer", "ringanswer", "hold", "echo", "busy", "congestion", "noanswer", "reject")


class Lab:
    def __init__(self, pbx: Pbx, calls: Calls) -> None:
        self.pbx = pbx
        self.calls = calls

    def run(self, one: Channel, two: Channel) -> None:
        """Dial a Local channel pair: the ;2 half runs its lab extension."""
        pbx, prog = self.pbx, two.program
        ringing = prog in ("ringanswer", "noanswer")
        if one.variables.get("__dial_mode") == "originate" or not ringing:
            # originate: Dial starts at once; /dial on a ringing Local: after the ring (trace)
            self.calls._dial_event(one, "")
        if prog in ("answer", "hold", "echo"):
            pbx.dialplan(two, "Answer", "", 1)
            self._local_answer(one, two)
            wait = {"answer": 2, "hold": 60, "echo": 5}[prog]
            pbx.later(0.01, pbx.dialplan, two, "Wait", str(wait), 2, channel=two)
            if prog == "answer":
                pbx.later(wait, pbx.dialplan, two, "Playback", "silence/1", 3, channel=two)
                pbx.later(wait + 1, self._lab_hangup, two, 4, channel=two)
            else:
                pbx.later(wait, self._lab_hangup, two, 3, channel=two)
        elif ringing:
            pbx.dialplan(two, "Ringing", "", 1)
            pbx.set_state(one, "Ringing")
            if one.variables.get("__dial_mode") == "dial":
                self.calls._dial_event(one, "")
            self.calls._dial_event(one, "RINGING")
            pbx.dialplan(two, "Wait", "2" if prog == "ringanswer" else "60", 2)
            if prog == "ringanswer":
                pbx.later(2, self._lab_ringanswer, one, two, channel=two)
            else:
                pbx.later(60, self._lab_hangup, two, 3, channel=two)
            pbx.later(one.dial_timeout, self._local_timeout, one, two, channel=one)
        elif prog in ("busy", "congestion"):
            # busy: Busy(5) answers the Dial with BUSY, ;1 dies with cause 0 (failures trace)
            cause = 17 if prog == "busy" else 34
            pbx.dialplan(two, prog.capitalize(), "5", 1)
            if prog == "congestion":
                pbx.set_state(two, "Busy")
            self.calls._dial_event(one, prog.upper())
            pbx.ev("ChannelHangupRequest", two, cause=0)
            self.calls._destroy(one, 0)
            if prog == "busy":
                pbx.set_state(two, "Busy")
            pbx.ev("ChannelHangupRequest", two, cause=16, soft=True)
            self.calls._destroy(two, cause)
        else:  # reject: Hangup(21)
            pbx.dialplan(two, "Hangup", "21", 1)
            self._lab_hangup(two, 1, cause=21)

    def _local_answer(self, one: Channel, two: Channel) -> None:
        two.answered = one.answered = True
        self.pbx.set_state(two, "Up")
        self.pbx.set_state(one, "Up")
        self.calls._dial_event(one, "ANSWER")
        if one.variables.get("__dial_mode") == "originate":
            self.calls._stasis_start(one)

    def _lab_ringanswer(self, one: Channel, two: Channel) -> None:
        self.pbx.dialplan(two, "Answer", "", 3)
        self._local_answer(one, two)
        self.pbx.later(0.5, self.pbx.dialplan, two, "Wait", "30", 4, channel=two)
        self.pbx.later(32, self._lab_hangup, two, 5, channel=two)

    def _lab_hangup(self, two: Channel, priority: int, cause: int = 16) -> None:
        """The ;2 half reaches Hangup(): it goes, then the ;1 half follows."""
        self.pbx.dialplan(two, "Hangup", "" if cause == 16 else str(cause), priority)
        self.pbx.ev("ChannelHangupRequest", two, cause=cause, soft=True)
        one = self.pbx.channels.get(two.peer_id or "")
        if one is not None:
            self.pbx.ev("ChannelHangupRequest", one, cause=cause)
        self.calls._destroy(two, cause)
        if one is not None:
            self.calls.stasis_end(one)
            self.calls._destroy(one, cause)

    def _local_timeout(self, one: Channel, two: Channel) -> None:
        if one.answered or two.gone:
            return
        self.pbx.ev("ChannelHangupRequest", two, cause=19)
        self.calls.stasis_end(one)
        self.calls._destroy(one, 19)
        self.pbx.ev("ChannelHangupRequest", two, cause=16, soft=True)
        self.calls._destroy(two, 19)
