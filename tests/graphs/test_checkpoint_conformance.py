"""LangGraph's own conformance suite, against both databases."""

from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES
from langgraph.checkpoint.conformance.report import ProgressCallbacks


async def test_conformance_full(saver):
    @checkpointer_test(name=f"DjangoCheckpointSaver[{saver.using}]")
    async def factory():
        yield saver

    report = await validate(factory, progress=ProgressCallbacks.quiet())
    failures = [f for result in report.results.values() for f in result.failures]
    print("\n".join(failures))
    assert failures == []
    detected = {name for name, result in report.results.items() if result.detected}
    assert detected == {cap.value for cap in ALL_CAPABILITIES}
    assert report.conformance_level() == "FULL"
