from setuptools import find_packages, setup

setup(
    name="arimonitor",
    version="3.0.0.dev0",
    description="Watches an Asterisk PBX through ARI and lets its operators steer it",
    python_requires=">=3.11",
    packages=find_packages(include=["arimonitor", "arimonitor.*"]),
    include_package_data=True,
    install_requires=[
        # the six core packages
        "websocket-client>=1.8,<2",
        "pika>=1.3,<1.5",
        "requests>=2.31,<3",
        "supervisor>=4.2,<5",
        "pyzmq>=25",
        "pydub>=0.25,<0.26",
        # the simulator's HTTP + WebSocket server: a real server library, not hand-made frames
        "aiohttp>=3.9,<4",
        # in-process LAME: ~3x faster than one ffmpeg process per file (PERF.md)
        "lameenc>=1.7,<2",
        # ships an ffmpeg binary for pydub, so no system ffmpeg is needed
        "imageio-ffmpeg>=0.5",
        # JSON on the hot paths (every ARI event, every publication, the bus): 5-10x the json
        # module's speed, a well-kept C library with wheels for every platform we run on
        "orjson>=3.9,<4",
        # ID3 tags on the MP3s: a well-kept tag library instead of hand-built frames
        "mutagen>=1.47,<2",
        # /metrics in the Prometheus text format: the reference client's exposition and custom
        # collectors, so names, escaping and histograms are right by construction
        "prometheus_client>=0.20,<1",
        # `arictl top`: a well-kept terminal UI (Live, tables, the alternate screen); imported
        # only by `top`, so every other arictl command starts as fast as before
        "rich>=13,<16",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            "pexpect>=4.9",
            # contrib/prometheus/alerts.yml is read by its test
            "pyyaml>=6",
            "ruff>=0.5",
        ],
    },
    entry_points={
        "console_scripts": [
            "arimonitor=arimonitor.cli:main",
            "arictl=arimonitor.console.client:main",
        ],
    },
)
