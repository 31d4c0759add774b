"""pytest plugin (entry point ``pytest11``): options, hooks and fixtures only.

``pytest --conformance-proxy-url URL``, ``pytest --conformance-proxy-cmd "…"`` or
``pytest --conformance`` adds one test per cassette × check under ``conformance/``. Every option
and ini key starts with ``conformance`` (``responses-conformance run`` keeps the short names). The logic lives in :mod:`conformance._pytest_items`
and :mod:`conformance.pipeline`; this module imports only what option registration needs, so an
installed but unused plugin costs a pytest run next to nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.options import OPTIONS, Option, settings_from

_SUITE = pytest.StashKey["Any"]()
_FUZZ = pytest.StashKey["Any"]()  # (Settings, examples, seed) of --conformance-fuzz
# Fuzzing alone does not start the cassette suite (it brings its own upstream and target).
_NOT_ACTIVATING = ("--conformance-fuzz", "--conformance-fuzz-seed")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "Responses API conformance (responses-conformance)")
    for opt in OPTIONS:
        if opt.cli_only:
            continue
        kwargs: dict[str, Any] = {"dest": "conformance_" + opt.dest, "help": opt.help}
        if opt.kind == "flag":
            kwargs.update(action="store_true", default=None)
        elif opt.kind == "list":
            kwargs.update(action="append", metavar=opt.metavar, default=None)
        else:
            kwargs.update(type={"int": int, "float": float}.get(opt.kind, str), metavar=opt.metavar, default=None)
            if opt.choices:
                kwargs["choices"] = list(opt.choices)
        group.addoption(opt.pytest_flag, **kwargs)
        ini_type = {"flag": "bool", "list": "linelist"}.get(opt.kind, "string")
        parser.addini(opt.ini, opt.help, type=ini_type, default=None)  # type: ignore[arg-type]


def _option(flag: str) -> Option:
    return next(o for o in OPTIONS if o.flag == flag)


def _getter(config: pytest.Config) -> Any:
    def get(opt: Option) -> Any:
        if opt.cli_only:
            return None
        value = config.getoption("conformance_" + opt.dest)
        if value is None:
            ini = config.getini(opt.ini)
            if ini not in (None, "", []):
                return ini
        return value

    return get


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a generated Responses conformance check")
    config.addinivalue_line(
        "markers",
        "conformance_asgi(app, cassettes=[...], profile='openai'): run these cassettes against an "
        "in-process ASGI app (or app factory taking the upstream URL); fails on findings",
    )
    get = _getter(config)
    # Active with a target (or --conformance) from the command line or the ini file, or with any
    # other of its options on the command line: `pytest --conformance-cassettes DIR` must run them.
    active = any(get(o) for o in OPTIONS if o.flag in ("--conformance", "--proxy-url", "--proxy-cmd", "--reference-fault"))
    active = active or any(
        config.getoption("conformance_" + o.dest) not in (None, False) for o in OPTIONS if o.flag not in _NOT_ACTIVATING and not o.cli_only
    )
    _configure_fuzz(config, get)
    if not active:
        return
    from pathlib import Path

    from conformance._pytest_items import Suite
    from conformance.exceptions import UserError
    from conformance.options import output_settings_from
    from conformance.pipeline import Pipeline

    try:
        pipeline = Pipeline(settings_from(get), output_settings_from(get), runner="pytest")
    except UserError as exc:
        raise pytest.UsageError(f"responses-conformance: {exc}") from None
    snapshot_dir = None
    if get(_option("--conformance-snapshots")):
        snapshot_dir = Path(config.rootpath) / (get(_option("--conformance-snapshot-dir")) or _option("--conformance-snapshot-dir").initial())
    suite = Suite(pipeline, snapshot_dir, items=str(get(_option("--conformance-items")) or "check"))
    config.stash[_SUITE] = suite
    if not hasattr(config, "workerinput"):
        config.pluginmanager.register(_Collector(suite), "responses-conformance-collector")


def _configure_fuzz(config: pytest.Config, get: Any) -> None:
    from conformance.exceptions import UserError

    try:
        examples = _option("--conformance-fuzz").convert(get(_option("--conformance-fuzz")) or 0)
        seed = _option("--conformance-fuzz-seed").convert(get(_option("--conformance-fuzz-seed")) or 0)
        if examples < 0:
            raise UserError(f"--conformance-fuzz: {examples} is below 0")
        if examples:
            config.stash[_FUZZ] = (settings_from(get), examples, seed)
    except UserError as exc:
        raise pytest.UsageError(f"responses-conformance: {exc}") from None


def _suite(config: pytest.Config) -> Any:
    return config.stash.get(_SUITE, None)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    suite = _suite(session.config)
    if suite is None:
        return
    from conformance.exceptions import UserError

    try:
        if hasattr(session.config, "workerinput"):
            suite.attach_worker()
        elif session.config.getoption("collectonly"):
            suite.load_only()
        else:
            suite.start_servers()
            # issue 11: say where the proxy's OpenAI base URL must point
            from conformance.setup_check import announce_upstream

            reporter = session.config.pluginmanager.get_plugin("terminalreporter")
            announce_upstream(suite.pipeline, reporter.write_line if reporter is not None else None)
            s = suite.pipeline.settings
            if s.setup_probe and (s.proxy_url or s.proxy_cmd):
                # issue 11: a proxy wired to another upstream is one setup error (exit 4), not
                # every test failing; the probe's exchange is not reused (items run it again)
                from conformance.setup_check import probe

                probe(suite.pipeline)
    except UserError as exc:
        suite.stop()
        pytest.exit(f"responses-conformance: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    fuzz = config.stash.get(_FUZZ, None)
    if fuzz is not None:
        from conformance._pytest_items import fuzz_item

        items[:0] = [fuzz_item(session, *fuzz)]
    suite = _suite(config)
    if suite is None:
        return
    from conformance._pytest_items import collect_items

    items[:0] = collect_items(session, suite)


def pytest_collection_finish(session: pytest.Session) -> None:
    suite = _suite(session.config)
    if suite is None:
        return
    # issue 15: the cassettes the session will run (after -k/-m), for --concurrency
    ids = (getattr(getattr(item, "cassette", None), "id", None) for item in session.items)
    suite.wanted = list(dict.fromkeys(i for i in ids if isinstance(i, str)))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node: Any, ids: list[str]) -> None:
    """issue 15: the controller runs the collected cassettes while the workers start."""
    suite = _suite(node.config)
    if suite is not None and suite.started and not node.config.getoption("collectonly"):
        suite.precompute(ids)


class _Collector:
    """Registered on the controller of an active run: sees every item's report, xdist's too."""

    def __init__(self, suite: Any) -> None:
        self.suite = suite

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" and report.user_properties:
            from conformance._pytest_items import record_report

            record_report(self.suite, report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    suite = _suite(session.config)
    if suite is None or hasattr(session.config, "workerinput"):
        return
    from conformance._pytest_items import finish_session

    finish_session(suite, session)


@pytest.hookimpl(hookwrapper=True)
def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> Any:
    yield
    suite = _suite(config)
    if suite is None or hasattr(config, "workerinput"):
        return
    from conformance._pytest_items import terminal_summary

    terminal_summary(suite, terminalreporter)


def pytest_unconfigure(config: pytest.Config) -> None:
    suite = _suite(config)
    if suite is not None and not hasattr(config, "workerinput"):
        suite.stop()


# -- fixtures for a proxy's own tests (issue 11); the logic is in conformance.fixtures -----------
@pytest.fixture(scope="session")
def conformance_upstream_server(pytestconfig: pytest.Config) -> Any:
    """The session's fake upstream on 127.0.0.1 (started on first use, stopped at the end)."""
    from conformance.fixtures import UpstreamFixture
    from conformance.upstream import FakeUpstream

    dirs = _getter(pytestconfig)(_option("--cassettes"))
    upstream = FakeUpstream().start()
    try:
        yield UpstreamFixture(upstream, dirs)
    finally:
        upstream.stop()


@pytest.fixture
def conformance_upstream(conformance_upstream_server: Any) -> Any:
    """The fake upstream, emptied for this test: ``.url``, ``.play(cassette)``, ``.requests``."""
    conformance_upstream_server.reset()
    return conformance_upstream_server


@pytest.fixture
def conformance_check() -> Any:
    """``conformance_check(response_or_bytes, cassette=..., upstream=...)``: the findings and
    problems of a proxy's answer (see :func:`conformance.fixtures.check_stream`)."""
    from conformance.fixtures import check_stream

    return check_stream


_ASGI = pytest.StashKey["Any"]()


def _asgi_results(item: pytest.Item) -> Any:
    """Run the item's ``conformance_asgi`` marker once (conformance.asgi); its results."""
    if _ASGI not in item.stash:
        from conformance.asgi import run_asgi

        marker = item.get_closest_marker("conformance_asgi")
        if marker is None or not marker.args or "cassettes" not in marker.kwargs:
            pytest.fail("conformance_asgi needs an app and cassettes=[...]", pytrace=False)
        item.stash[_ASGI] = run_asgi(*marker.args, **marker.kwargs)
    return item.stash[_ASGI]


@pytest.fixture
def conformance_asgi_results(request: pytest.FixtureRequest) -> Any:
    """{cassette id: findings and problems} of the test's ``conformance_asgi`` marker; a test
    that takes this fixture makes its own assertions (the marker then does not fail it)."""
    return _asgi_results(request.node)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    if item.get_closest_marker("conformance_asgi") is None or "conformance_asgi_results" in getattr(item, "fixturenames", ()):
        return
    failing = {cid: r for cid, r in _asgi_results(item).items() if not r.ok}
    if failing:
        lines = [f"{cid}: {f.check_id}: {f.message}" for cid, r in failing.items() for f in r.failing()]
        pytest.fail("conformance findings:\n" + "\n".join(lines[:50]), pytrace=False)
