"""`arimonitor sim` / procs/ari_sim.py: the ARI simulator as a supervised process."""

from __future__ import annotations

import asyncio
import logging

from arimonitor.config import Config
from arimonitor.process import Stopper
from arimonitor.sim.ami import AmiServer
from arimonitor.sim.server import Sim, endpoints_from_def


def build(cfg: Config) -> Sim:
    return Sim(user=cfg["ari.user"], password=cfg["ari.password"], app=cfg["ari.app"],
               recordings=cfg["paths.recordings"], endpoints=endpoints_from_def(cfg["files.endpoints"]),
               seed=cfg["sim.seed"])


async def serve(cfg: Config, stopper: Stopper, log: logging.Logger) -> None:
    sim = build(cfg)
    port = await sim.start(cfg["sim.host"], cfg["sim.port"])
    ami_user = cfg["ami.user"] if cfg["ami.password"] else cfg["ari.user"]
    ami = AmiServer(lambda: sim.pbx, ami_user, cfg["ami.password"] or cfg["ari.password"])
    ami_port = await ami.start(cfg["sim.host"], cfg["sim.ami_port"])
    log.info("ARI simulator on http://%s:%d/ari (AMI on %d), %d endpoints, app %s",
             cfg["sim.host"], port, ami_port, len(sim.pbx.endpoints), cfg["ari.app"])
    if cfg["sim.demo_traffic"]:
        from arimonitor.sim.scenarios import Demo

        sim.demo = Demo(sim)
        sim.demo.start()
        log.info("demo traffic on")
    try:
        while not stopper.stopping:
            await asyncio.sleep(0.2)
    finally:
        await ami.stop()
        await sim.stop()


def run(cfg: Config, stopper: Stopper, log: logging.Logger) -> int:
    if not cfg["ari.password"]:
        log.error("ari.password is empty: set it in the config file or ARIMONITOR_ARI_PASSWORD")
        return 78
    asyncio.run(serve(cfg, stopper, log))
    return 0
