"""Property-based tests (hypothesis): random spec YAML, damaged results.csv / samples.bin bytes and random cards fed
to the readers. Every input ends in a correct result or a one-line error of the reader's own type, never another
exception or a hang. The default suite tries a few hundred inputs; ``-m slow`` many more (docs/integrity.md).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from robustbench_jpeg.attack.spec import SPEC_FORMAT_KEYS, AttackSpec, SpecFile  # noqa: E402
from robustbench_jpeg.attack.spec_files import load_spec, packaged_specs_dir  # noqa: E402
from robustbench_jpeg.attack.spec_values import AttackSpecError  # noqa: E402
from robustbench_jpeg.checkpoint import build_model_from_card, read_model_card  # noqa: E402
from robustbench_jpeg.report.load import ReportInputError, load_runs  # noqa: E402
from robustbench_jpeg.runfolder import CardError, ModelCard, RunFormatError, StoreWarning, read_results  # noqa: E402  # noqa: E402
from robustbench_jpeg.runfolder.records import parse_samples  # noqa: E402

QUICKSTART = Path(__file__).resolve().parents[1] / "reports" / "quickstart" / "data" / "runs" / "quickstart"
TRIED: Counter[str] = Counter()  # inputs tried per property (printed by the slow tests)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
LONG = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@contextlib.contextmanager
def no_hang(seconds: int = 20):
    """Fail instead of hanging: SIGALRM after ``seconds``."""

    def alarm(*_):
        raise TimeoutError(f"a reader took longer than {seconds} s (a hang)")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def one_line(exc: BaseException) -> None:
    assert str(exc) and "\n" not in str(exc).strip(), repr(exc)


# --- random specs ---------------------------------------------------------------------------------------------------

FIELDS = [f for f in AttackSpec.__dataclass_fields__] + ["stepz", "linspace"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["pgd", "fgsm", "apgd-t", "square", "linf", "l2", "8/255", "1/0", "soft", "bpda", "eps/2"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=5), inner),
    max_leaves=12,
)
attacks = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)
spec_docs = st.dictionaries(
    st.sampled_from([*SPEC_FORMAT_KEYS, "colour"]),
    values | st.lists(attacks, max_size=3) | attacks,
    max_size=6,
)


def packaged_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(packaged_specs_dir().glob("*.yaml"))]


@st.composite
def mutated(draw, sources: list[bytes]) -> bytes:
    """One of ``sources`` with random cuts, byte flips, insertions and duplicated lines."""
    data = bytearray(draw(st.sampled_from(sources)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["cut", "flip", "insert", "dup", "delete"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "cut":
            del data[at:]
        elif kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(max_size=8) | st.sampled_from([b",", b"\n", b'"', b"\r", b"nan", b"&a *a"]))
        elif kind == "dup":
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            data = bytearray(b"\n".join(lines[: i + 1] + lines[i:]))
        elif data:
            del data[at : at + draw(st.integers(1, 40))]
    return bytes(data)


def check_spec_bytes(data: bytes) -> None:
    TRIED["spec"] += 1
    with tempfile.TemporaryDirectory() as folder, no_hang():
        path = Path(folder) / "random.yaml"
        path.write_bytes(data)
        try:
            spec = load_spec(str(path))
        except AttackSpecError as exc:
            one_line(exc)
            return
        assert isinstance(spec, SpecFile) and spec.attacks
        json.dumps(spec.to_dict())  # what sweep_state.json stores: plain JSON, bounded
        assert len(spec.description) <= 2000


spec_inputs = st.one_of(
    spec_docs.map(lambda d: yaml.safe_dump(d, allow_unicode=True).encode()),
    st.text(max_size=300).map(str.encode),
    mutated([t.encode() for t in packaged_texts()]),
)


@FAST
@given(spec_inputs)
def test_random_specs_load_or_give_one_line(data):
    check_spec_bytes(data)


@pytest.mark.slow
@LONG
@given(spec_inputs)
def test_random_specs_long(data):
    check_spec_bytes(data)


# --- damaged results.csv and samples.bin ----------------------------------------------------------------------------


def check_run_bytes(results: bytes, samples: bytes) -> None:
    TRIED["run"] += 1
    with tempfile.TemporaryDirectory() as folder, no_hang(), warnings.catch_warnings():
        warnings.simplefilter("ignore", StoreWarning)
        run = Path(folder) / "run"
        shutil.copytree(QUICKSTART, run)
        (run / "results.csv").write_bytes(results)
        (run / "samples.bin").write_bytes(samples)
        try:
            table = read_results(run)
            assert table["cell_id"].is_unique
        except RunFormatError as exc:
            one_line(exc)
        parsed = parse_samples(samples)
        assert all(isinstance(p, str) for p in parsed.problems) and all(
            v.dtype == bool for v in parsed.vectors.values()
        )
        try:
            load_runs([run])
        except ReportInputError as exc:
            one_line(exc)


def _quickstart(name: str) -> bytes:
    return (QUICKSTART / name).read_bytes()


run_inputs = st.tuples(
    mutated([_quickstart("results.csv")]) | st.just(_quickstart("results.csv")),
    mutated([_quickstart("samples.bin")]) | st.just(_quickstart("samples.bin")),
)


@FAST
@given(run_inputs)
def test_damaged_results_and_samples_read_or_give_one_line(data):
    check_run_bytes(*data)


@pytest.mark.slow
@settings(LONG, max_examples=200)
@given(run_inputs)
def test_damaged_results_and_samples_long(data):
    check_run_bytes(*data)


def test_found_by_the_properties_a_shifted_line_and_a_damaged_record_id(tmp_path):
    """Two inputs the properties found: a results line with a field missing (row_format then holds a sha) was a
    ValueError traceback; a samples.bin record whose id bytes are not ASCII (its CRC covers only the bits) was a
    UnicodeDecodeError."""
    lines = _quickstart("results.csv").split(b"\n")
    fields = lines[1].split(b",")
    lines[1] = b",".join(fields[:5] + fields[6:])
    samples = bytearray(_quickstart("samples.bin"))
    samples[4] = 0xB4  # first byte of the first record's cell id
    check_run_bytes(b"\n".join(lines), bytes(samples))
    run = tmp_path / "run"
    shutil.copytree(QUICKSTART, run)
    (run / "results.csv").write_bytes(b"\n".join(lines))
    with pytest.raises(RunFormatError, match="results.csv: the row_format column holds a non-integer"):
        read_results(run)


# --- random cards ---------------------------------------------------------------------------------------------------

GOOD_CARD = json.loads((QUICKSTART / "jpegdl" / "card.json").read_text(encoding="utf-8"))
card_inputs = st.one_of(
    st.dictionaries(st.sampled_from(sorted(GOOD_CARD)), values).map(lambda d: {**GOOD_CARD, **d}),
    st.dictionaries(st.sampled_from(sorted(GOOD_CARD)) | st.text(max_size=6), values),
    values,
)


def check_card(card) -> None:
    TRIED["card"] += 1
    with tempfile.TemporaryDirectory() as folder, no_hang():
        arm = Path(folder) / "jpegdl"
        arm.mkdir()
        try:
            (arm / "card.json").write_text(json.dumps(card), encoding="utf-8")
        except ValueError:  # a float JSON cannot hold
            (arm / "card.json").write_text(repr(card), encoding="utf-8")
        try:
            read = read_model_card(arm)
        except (CardError, RunFormatError) as exc:
            one_line(exc)
            return
        assert isinstance(read, ModelCard)
        try:
            build_model_from_card(read.to_dict())
        except (CardError, RunFormatError, FileNotFoundError, ValueError) as exc:
            one_line(exc)


@FAST
@given(card_inputs)
def test_random_cards_read_or_give_one_line(card):
    check_card(card)


@pytest.mark.slow
@settings(LONG, max_examples=600)
@given(card_inputs)
def test_random_cards_long(card):
    check_card(card)


@pytest.mark.slow
def test_print_inputs_tried():
    """Runs after the long properties (same module): their counts, for docs/integrity.md (``pytest -s``)."""
    print(f"\ninputs tried: {dict(TRIED)}")
