"""Post a deployment event from Python: `python examples/python/notify.py BASE_URL`."""

import asyncio
import sys

import cased


async def main(base_url: str) -> None:
    event = cased.DeploymentEvent(
        "Deploy checkout v1.4.2 (from Python)",
        repository_full_name="acme/checkout",
        commit_sha="4f2a9c1d",
        ref="refs/heads/main",
        status="running",
        event_metadata={"environment": "production", "version": "1.4.2"},
    )
    client = cased.Client(api_key="demo-key", base_url=base_url)
    answer = await client.create_deployment(event)
    print(f"[python] HTTP {answer['status']} {answer['body']}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
