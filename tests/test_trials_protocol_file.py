"""The protocol files: the bundled ones load and quote their seed text; malformed ones are
refused with a ProtocolError naming the file and the problem."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from netvolume.errors import ProtocolError
from netvolume.trials import load_protocol, protocol_names
from netvolume.trials.protocol import read_protocol

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NETVOLUME_SHARED") or ROOT.parent / "shared")
SEEDS = SHARED / "seeds"
NAMES = protocol_names()

needs_seeds = pytest.mark.skipif(
    not SEEDS.is_dir(), reason=f"no seed texts at {SEEDS} (set NETVOLUME_SHARED)"
)


def _normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# --- the bundled protocols -----------------------------------------------------------------


def test_the_five_seed_protocols_are_bundled() -> None:
    assert NAMES == (
        "ibi_response",
        "lesion_based_prrt",
        "personalised_prrt",
        "retreatment",
        "volumetric_followup",
    )


@pytest.mark.parametrize("name", NAMES)
def test_bundled_protocol_loads(name: str) -> None:
    protocol = load_protocol(name)
    assert protocol.name == name == Path(protocol.path).stem
    assert protocol.title and protocol.version and protocol.summary
    assert protocol.reference_date
    assert len(protocol.sha256) == 64
    ids = [c.id for c in protocol.criteria]
    assert len(ids) == len(set(ids))
    assert any(c.kind == "inclusion" for c in protocol.criteria)
    for c in protocol.criteria:
        assert c.text.strip(), c.id
        assert c.source.strip(), c.id
        assert c.rule.describe(), c.id
    # by path too, the same protocol
    again = load_protocol(protocol.path)
    assert again.criteria == protocol.criteria
    assert again.sha256 == protocol.sha256


SOURCE_PARAMS = [
    pytest.param(name, c.id, id=f"{name}-{c.id}")
    for name in NAMES
    for c in load_protocol(name).criteria
]


@needs_seeds
@pytest.mark.parametrize("name", NAMES)
def test_seed_file_exists(name: str) -> None:
    assert (SEEDS / load_protocol(name).seed).is_file()


@needs_seeds
@pytest.mark.parametrize(("name", "criterion"), SOURCE_PARAMS)
def test_source_is_quoted_from_the_seed_text(name: str, criterion: str) -> None:
    """Each "..."-separated fragment of the source is in the seed text (spaces normalised)."""
    protocol = load_protocol(name)
    seed = _normal((SEEDS / protocol.seed).read_text(encoding="utf-8"))
    source = protocol.criterion(criterion).source
    fragments = [_normal(f) for f in source.split("...")]
    assert any(fragments), source
    for fragment in fragments:
        if fragment:
            assert fragment in seed, f"{criterion}: {fragment!r} is not in {protocol.seed}"


def test_unknown_protocol_lists_the_names() -> None:
    with pytest.raises(ProtocolError) as info:
        load_protocol("nope")
    text = str(info.value)
    assert "no protocol named 'nope'" in text
    for name in NAMES:
        assert name in text


# --- malformed protocol files --------------------------------------------------------------

VALID = """\
name = "mini"
title = "A minimal protocol"
version = "1"
seed = "000_c074da4235c81f12.txt"
summary = "Two criteria."
reference_date = ["inclusion_date"]

[[criterion]]
id = "age"
kind = "inclusion"
text = "Adult"
source = "Patient aged ≥ 18 years."
rule = "compare"
fact = "age_years"
op = ">="
value = 18

[[criterion]]
id = "progression"
kind = "inclusion"
text = "Progression in the last 12 months"
source = "Evidence of progression in the 12 months preceding Lu-177oxodotreotide therapy"
rule = "any"
of = [
  { rule = "imaging", check = "recist_progression", within_months = 12 },
  { rule = "interval", start = "progression_date", end = "reference", max_months = 12 },
]
"""

SECOND = """
[[criterion]]
id = "second"
kind = "exclusion"
text = "A second criterion"
source = "Some words"
"""


def write(tmp_path: Path, text: str, name: str = "mini.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_minimal_protocol_is_valid(tmp_path: Path) -> None:
    protocol = read_protocol(write(tmp_path, VALID))
    assert [c.id for c in protocol.criteria] == ["age", "progression"]
    assert load_protocol(tmp_path / "mini.toml").name == "mini"


def _replace(old: str, new: str) -> str:
    assert VALID.count(old) == 1, old
    return VALID.replace(old, new)


MALFORMED = [
    pytest.param(
        _replace('fact = "age_years"', 'fact = "age_yeras"'),
        ["criterion 1 (age)", "'age_yeras' is not a clinical fact", "did you mean 'age_years'"],
        id="unknown_fact_typo",
    ),
    pytest.param(
        _replace('fact = "age_years"', 'fact = "hb_g_l"'),
        ["'hb_g_l' is an alternative unit column of 'hb_g_dl'"],
        id="alternative_unit_column_as_fact",
    ),
    pytest.param(
        _replace('op = ">="', 'op = "=>"'),
        ["criterion 1 (age)", "op '=>' is not one of"],
        id="unknown_op",
    ),
    pytest.param(
        _replace('rule = "compare"', 'rule = "compar"'),
        ["criterion 1 (age)", "unknown rule 'compar'"],
        id="unknown_rule",
    ),
    pytest.param(
        _replace('check = "recist_progression"', 'check = "recist_progresion"'),
        ["criterion 2 (progression) any[0]", "unknown imaging check 'recist_progresion'"],
        id="unknown_imaging_check",
    ),
    pytest.param(
        _replace("within_months = 12 }", "within_month = 12 }"),
        ["imaging check 'recist_progression' has no parameter 'within_month'"],
        id="unknown_imaging_parameter",
    ),
    pytest.param(
        _replace("within_months = 12 }", 'within_months = "12" }'),
        ["within_months must be a number"],
        id="imaging_parameter_type",
    ),
    pytest.param(
        _replace('id = "progression"', 'id = "age"'),
        ["duplicate criterion id(s) age"],
        id="duplicate_id",
    ),
    pytest.param(
        _replace('source = "Patient aged ≥ 18 years."\n', ""),
        ["criterion 1", "criterion without 'source'"],
        id="missing_source",
    ),
    pytest.param(
        _replace('source = "Patient aged ≥ 18 years."', 'source = ""'),
        ["criterion 1", "criterion without 'source'"],
        id="empty_source",
    ),
    pytest.param(
        _replace("value = 18", 'value = "18"'),
        ["value '18' does not fit fact 'age_years' (number)"],
        id="value_type_number",
    ),
    pytest.param(
        _replace(
            'fact = "age_years"\nop = ">="\nvalue = 18', 'fact = "sex"\nop = "=="\nvalue = "X"'
        ),
        ["'X' is not a value of 'sex'"],
        id="category_value",
    ),
    pytest.param(
        _replace(
            'fact = "age_years"\nop = ">="\nvalue = 18',
            'fact = "informed_consent"\nop = ">"\nvalue = true',
        ),
        ["> does not apply to a bool fact"],
        id="greater_on_bool",
    ),
    pytest.param(
        _replace(
            'fact = "age_years"\nop = ">="\nvalue = 18',
            'fact = "informed_consent"\nop = "=="\nvalue = 1',
        ),
        ["value 1 does not fit fact 'informed_consent' (bool)"],
        id="value_type_bool",
    ),
    pytest.param(
        _replace("value = 18", 'value = 18\ntimes = "sex"'),
        ["fact 'sex' is a category, expected number or integer"],
        id="times_not_a_number",
    ),
    pytest.param(
        _replace(
            '  { rule = "interval", start = "progression_date", end = "reference", '
            "max_months = 12 },\n",
            "",
        ),
        ["any needs a list 'of' at least two rules"],
        id="any_with_one_rule",
    ),
    pytest.param(
        _replace('start = "progression_date"', 'start = "age_years"'),
        ["fact 'age_years' is a number, expected date"],
        id="interval_not_a_date",
    ),
    pytest.param(
        _replace(", max_months = 12 }", " }"),
        ["an interval rule needs a min_ or max_ bound"],
        id="interval_without_bound",
    ),
    pytest.param(
        _replace('kind = "inclusion"\ntext = "Adult"', 'kind = "inklusion"\ntext = "Adult"'),
        ["kind must be one of inclusion, exclusion, information"],
        id="unknown_kind",
    ),
    pytest.param(
        _replace("value = 18", 'value = 18\nunit = "years"'),
        ["unknown key(s) unit"],
        id="unknown_key",
    ),
    pytest.param(
        _replace('seed = "000_c074da4235c81f12.txt"\n', ""),
        ["no 'seed'"],
        id="no_seed",
    ),
    pytest.param(
        _replace('reference_date = ["inclusion_date"]', 'reference_date = ["age_years"]'),
        ["reference_date", "fact 'age_years' is a number, expected date"],
        id="reference_date_not_a_date",
    ),
    pytest.param(
        VALID + SECOND + 'rule = "review"\nfact = "gfr_ml_min_1_73m2"\n',
        ["criterion 3 (second)", "fact 'gfr_ml_min_1_73m2' is a number, expected bool"],
        id="review_fact_not_bool",
    ),
    pytest.param(
        VALID + SECOND + 'rule = "review"\nfact = "uncontrolled_condition"\nvalue = false\n'
        'show = ["crp"]\n',
        ["criterion 3 (second) show", "'crp' is not a clinical fact"],
        id="review_show_unknown_fact",
    ),
    pytest.param(
        VALID + SECOND + 'rule = "review"\nfact = "uncontrolled_condition"\nshow = "crp_mg_l"\n',
        ["criterion 3 (second): show must be a list of fact names"],
        id="review_show_not_a_list",
    ),
    pytest.param(
        VALID + SECOND + 'rule = "review"\nfact = "uncontrolled_condition"\nvalue = false\n'
        'imaging_evidence = "bones"\n',
        ["unknown imaging check 'bones'"],
        id="review_unknown_imaging_evidence",
    ),
    pytest.param(
        VALID + SECOND + 'rule = "compare"\nfact = "pregnant"\nop = "=="\nvalue = false\n'
        'applies_if = { rule = "compare", fact = "gender", op = "==", value = "F" }\n',
        ["criterion 3 (second) applies_if", "'gender' is not a clinical fact"],
        id="applies_if_unknown_fact",
    ),
    pytest.param(
        VALID.split("[[criterion]]")[0],
        ["no [[criterion]]"],
        id="no_criteria",
    ),
    pytest.param(
        _replace('text = "Adult"', 'text = "Adult'),
        ["protocol file mini.toml"],
        id="toml_syntax_error",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED)
def test_malformed_protocol(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ProtocolError) as info:
        read_protocol(path)
    message = str(info.value)
    assert info.value.files == (path,)
    assert "mini.toml" in info.value.message  # the file is named in the message itself
    for part in expected:
        assert part in message, message
    # load_protocol by path gives the same error
    with pytest.raises(ProtocolError) as again:
        load_protocol(path)
    assert str(again.value) == message


def test_malformed_protocol_is_not_a_traceback(tmp_path: Path) -> None:
    """A TOML error gives the line and column, as tomllib says them."""
    path = write(tmp_path, _replace('text = "Adult"', 'text = "Adult'))
    with pytest.raises(ProtocolError, match=r"line \d+"):
        read_protocol(path)
