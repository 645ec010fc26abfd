"""Bridges, recordings (real WAV files) and playbacks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from arimonitor.sim import shapes, wav
from arimonitor.sim.core import Pbx
from arimonitor.sim.hub import Scope
from arimonitor.sim.shapes import event
from arimonitor.sim.state import AriError, Bridge, Channel, Recording

BRIDGE_TYPES = {"mixing", "holding", "dtmf_events", "proxy_media", "video_sfu", "video_single"}
RECORD_FORMATS = {"wav"}  # the sim writes WAV only


class Media:
    def __init__(self, pbx: Pbx) -> None:
        self.pbx = pbx
        self.on_channel_gone: Callable[[Channel], None] = lambda ch: None
        self.fail_next_recordings = 0  # fault injection: RecordingFailed instead of a file

    # ---- bridges -----------------------------------------------------------------------
    def get_bridge(self, bridge_id: str) -> Bridge:
        bridge = self.pbx.bridges.get(bridge_id)
        if bridge is None:
            raise AriError(404, "Bridge not found")
        return bridge

    def create_bridge(self, params: dict[str, Any], bridge_id: str | None = None) -> dict[str, Any]:
        bid = bridge_id or params.get("bridgeId") or self.pbx.uuid()
        types = [t for t in str(params.get("type") or "mixing").split(",") if t]
        if not set(types) <= BRIDGE_TYPES:
            # Asterisk's own (odd) answer to an invalid type (rest_errors)
            raise AriError(500, "Unable to create bridge. Possible duplicate bridge id '(null)'")
        if bid in self.pbx.bridges:
            raise AriError(409, f"Bridge with id '{bid}' already exists")
        bridge = Bridge(id=bid, bridge_type=types[0], name=str(params.get("name") or ""),
                        app=self.pbx.default_app)
        self.pbx.bridges[bid] = bridge
        self.pbx.emit(event("BridgeCreated", bridge=bridge.json()), Scope(bridge=bridge))
        return bridge.json()

    def _stasis_channels(self, channel_ids: str | None) -> list:
        """The channels a bridge operation names, checked the way Asterisk checks them."""
        if not channel_ids:
            raise AriError(400, "Missing parameter channel")
        chans = []
        for cid in channel_ids.split(","):
            ch = self.pbx.channels.get(cid)
            if ch is None:
                raise AriError(400, "Channel not found")
            if ch.app is None:
                raise AriError(422, "Channel not in Stasis application")
            chans.append(ch)
        return chans

    def add_channel(self, bridge_id: str, channel_ids: str | None) -> None:
        bridge = self.get_bridge(bridge_id)
        for ch in self._stasis_channels(channel_ids):
            if ch.bridge_id == bridge.id:
                continue
            self.leave_bridge(ch)
            ch.bridge_id = bridge.id
            bridge.channels.append(ch.id)
            self.pbx.emit(event("ChannelEnteredBridge", bridge=bridge.json(), channel=ch.json()),
                          Scope(channel=ch, bridge=bridge))
            self._bridge_peers(bridge)

    def _bridge_peers(self, bridge: Bridge) -> None:
        names = {cid: self.pbx.channels[cid].name for cid in bridge.channels if cid in self.pbx.channels}
        for cid in bridge.channels:
            if cid in self.pbx.channels:
                peers = ",".join(n for c, n in names.items() if c != cid)
                self.pbx.varset(self.pbx.channels[cid], "BRIDGEPEER", peers)

    def remove_channel(self, bridge_id: str, channel_ids: str | None) -> None:
        bridge = self.get_bridge(bridge_id)
        chans = self._stasis_channels(channel_ids)
        if any(ch.bridge_id != bridge.id for ch in chans):
            raise AriError(422, "Channel not in this bridge")
        for ch in chans:
            self.leave_bridge(ch)

    def leave_bridge(self, ch: Channel) -> None:
        bridge = self.pbx.bridges.get(ch.bridge_id or "")
        ch.bridge_id = None
        if bridge is None or ch.id not in bridge.channels:
            return
        bridge.channels.remove(ch.id)
        self.pbx.varset(ch, "BRIDGEPEER", "")
        self.pbx.emit(event("ChannelLeftBridge", bridge=bridge.json(), channel=ch.json()),
                      Scope(channel=ch, bridge=bridge))
        self._bridge_peers(bridge)

    def destroy_bridge(self, bridge_id: str) -> None:
        bridge = self.get_bridge(bridge_id)
        for rec in [r for r in self.pbx.recordings.values() if r.target_uri == f"bridge:{bridge.id}"]:
            self.finish(rec)
        for cid in list(bridge.channels):
            if cid in self.pbx.channels:
                self.leave_bridge(self.pbx.channels[cid])
        del self.pbx.bridges[bridge.id]
        self.pbx.emit(event("BridgeDestroyed", bridge=bridge.json()), Scope(bridge=bridge))

    # ---- recordings ----------------------------------------------------------------------
    def record(self, target_uri: str, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("name")
        fmt = params.get("format")
        if not name or not fmt:
            raise AriError(400, "Record requires both name and format")
        if fmt not in RECORD_FORMATS:
            raise AriError(422, "specified format is unknown on this system")
        try:
            path = wav.recording_path(self.pbx.recordings_dir, name, fmt)
        except ValueError:
            raise AriError(400, "Recording name is invalid") from None
        if_exists = params.get("ifExists", "fail")
        if if_exists not in ("fail", "overwrite", "append"):
            raise AriError(400, "ifExists must be one of fail, overwrite, append")
        if name in self.pbx.recordings or (if_exists == "fail" and path.exists()):
            raise AriError(409, f"Recording '{name}' already exists and can not be overwritten")
        rec = Recording(name=name, target_uri=target_uri, fmt=fmt, started=time.time())
        if target_uri.startswith("bridge:"):
            bridge = self.pbx.bridges[target_uri[7:]]
            bridge.technology = "softmix"  # a bridge with a recorder is a softmix one (trace)
        self.pbx.recordings[name] = rec
        queued = shapes.live_recording(name, fmt, "queued", target_uri)
        if self.fail_next_recordings > 0:
            self.fail_next_recordings -= 1
            rec.state = "failed"
            self.pbx.later(0, self._failed, rec)
            return queued
        self._emit_rec("RecordingStarted", rec, shapes.live_recording(name, fmt, "recording", target_uri))
        return queued

    def _emit_rec(self, kind: str, rec: Recording, body: dict[str, Any]) -> None:
        target = rec.target_uri.split(":", 1)[1]
        scope = Scope(twice=True, bridge=self.pbx.bridges.get(target), channel=self.pbx.channels.get(target))
        self.pbx.emit(event(kind, recording=body), scope)

    def _failed(self, rec: Recording) -> None:
        self.pbx.recordings.pop(rec.name, None)
        self._emit_rec("RecordingFailed", rec, shapes.live_recording(
            rec.name, rec.fmt, "failed", rec.target_uri, cause="sim: injected failure"))

    def get_live(self, name: str) -> dict[str, Any]:
        rec = self.pbx.recordings.get(name)
        if rec is None:
            raise AriError(404, "Recording not found")
        return shapes.live_recording(rec.name, rec.fmt, rec.state, rec.target_uri)

    def stop(self, name: str) -> None:
        rec = self.pbx.recordings.get(name)
        if rec is None or rec.state == "failed":
            raise AriError(404, "Recording not found")
        self.finish(rec)

    def finish(self, rec: Recording) -> None:
        """Write the WAV of the recorded (wall-clock) time and announce it."""
        self.pbx.recordings.pop(rec.name, None)
        seconds = time.time() - rec.started
        wav.write_wav(wav.recording_path(self.pbx.recordings_dir, rec.name, rec.fmt), seconds)
        self._emit_rec("RecordingFinished", rec, shapes.live_recording(
            rec.name, rec.fmt, "done", rec.target_uri, duration=round(seconds)))
        self.pbx.device_state("Recorder/ARI", "UNKNOWN")

    def channel_gone(self, ch: Channel) -> None:
        for rec in [r for r in self.pbx.recordings.values() if r.target_uri == f"channel:{ch.id}"]:
            self.finish(rec)
        self.on_channel_gone(ch)

    def stored_one(self, name: str) -> dict[str, str]:
        for item in wav.stored(self.pbx.recordings_dir):
            if item["name"] == name:
                return item
        raise AriError(404, "Recording not found")

    def stored_file(self, name: str) -> tuple[bytes, str]:
        """GET /recordings/stored/{name}/file as Asterisk answers it: the bytes, Content-Type
        `audio/<extension>`; 403 when the file cannot be opened."""
        item = self.stored_one(name)
        try:
            data = wav.recording_path(self.pbx.recordings_dir, name, item["format"]).read_bytes()
        except OSError:
            raise AriError(403, "Recording could not be opened") from None
        return data, f"audio/{item['format']}"

    def delete_stored(self, name: str) -> None:
        item = self.stored_one(name)
        wav.recording_path(self.pbx.recordings_dir, name, item["format"]).unlink()

    # ---- playback --------------------------------------------------------------------------
    def play(self, ch: Channel, params: dict[str, Any]) -> dict[str, Any]:
        media = params.get("media")
        if not media:
            raise AriError(400, "Missing parameter media")
        pid = params.get("playbackId") or self.pbx.uuid()
        target = f"channel:{ch.id}"
        self.pbx.emit(event("PlaybackStarted", playback=shapes.playback_json(pid, media, target, "playing")),
                      Scope(channel=ch))
        seconds = 1.0
        if media.startswith("sound:silence/"):
            try:
                seconds = float(media.rsplit("/", 1)[1])
            except ValueError:
                pass
        self.pbx.later(seconds, self._played, ch, pid, media, channel=ch)
        return shapes.playback_json(pid, media, target, "queued")

    def _played(self, ch: Channel, pid: str, media: str) -> None:
        self.pbx.emit(event("PlaybackFinished", playback=shapes.playback_json(
            pid, media, f"channel:{ch.id}", "done")), Scope(channel=ch))
