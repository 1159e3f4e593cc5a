"""The clinical facts input of the eligibility engine: schema, units, the strict reader."""

from __future__ import annotations

import csv
import datetime
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from netvolume.errors import ClinicalDataError, InputPathError
from netvolume.trials import (
    ClinicalCohort,
    PatientFacts,
    clinical_schema,
    clinical_schema_markdown,
    field_spec,
    read_clinical,
)
from netvolume.trials.clinical import BOOL_FALSE, BOOL_TRUE, _parse_schema

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "sample_dicom" / "clinical.csv"
DOCS = ROOT / "docs" / "clinical.md"


def write_csv(folder: Path, rows: Sequence[Mapping[str, Any]], name: str = "cohort.csv") -> Path:
    """Write ``rows`` (dicts, one per patient; header = union of keys in order)."""
    header: list[str] = []
    for row in rows:
        header += [k for k in row if k not in header]
    path = folder / name
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if row.get(k) is None else row.get(k) for k in header])
    return path


def write_json(folder: Path, payload: object, name: str = "cohort.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def one(folder: Path, **cells: Any) -> PatientFacts:
    """Read a one-patient CSV with ``cells`` (patient_id added)."""
    return read_clinical(write_csv(folder, [{"patient_id": "P1", **cells}])).patients[0]


def error_of(folder: Path, rows: Sequence[Mapping[str, Any]]) -> ClinicalDataError:
    with pytest.raises(ClinicalDataError) as info:
        read_clinical(write_csv(folder, rows))
    return info.value


# ------------------------------------------------------------------------------ sample


def test_sample_file_reads_typed() -> None:
    cohort = read_clinical(SAMPLE)
    assert isinstance(cohort, ClinicalCohort)
    assert len(cohort) == 4
    assert [p.patient_id for p in cohort] == [f"NV2026-P00{i}" for i in range(1, 5)]
    assert cohort.sha256 == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert cohort.columns[0] == "patient_id"
    assert "pregnant" in cohort.columns

    first = cohort.by_id("NV2026-P001")
    assert first.row == 1 and first.line == 2
    assert first.value("sex") == "M"
    assert first.value("grade") == 1 and type(first.value("grade")) is int
    assert first.value("ecog") == 1 and type(first.value("ecog")) is int
    assert first.value("hb_g_dl") == pytest.approx(11.8)
    assert first.value("diagnosis_date") == datetime.date(2021, 8, 23)
    assert first.value("pregnant") is False
    assert first.value("primary_site") == "small_intestine"
    assert first.value("karnofsky_pct") is None  # not a column of the file
    for patient in cohort:
        assert isinstance(patient.value("prrt_start_date"), datetime.date)
        weight, height = patient.value("weight_kg"), patient.value("height_cm")
        assert isinstance(weight, float) and isinstance(height, float)
        bmi = patient.get("bmi_kg_m2")
        assert bmi is not None and bmi.derived is not None
        assert bmi.value == weight / (height / 100) ** 2
        assert bmi.unit == "kg/m²"

    assert cohort.patients[1].value("sex") == "F"
    assert cohort.patients[3].line == 5


def test_sample_provenance() -> None:
    patient = read_clinical(SAMPLE).patients[2]
    fact = patient.get("hb_g_dl")
    assert fact is not None
    assert (fact.column, fact.raw, fact.row, fact.line) == ("hb_g_dl", "14.8", 3, 4)
    assert fact.file == str(SAMPLE)
    assert fact.describe() == "clinical.csv line 4, hb_g_dl = 14.8"
    bmi = patient.get("bmi_kg_m2")
    assert bmi is not None
    assert bmi.derived == "from weight_kg 74.8 and height_cm 162"
    assert bmi.describe() == (
        "clinical.csv line 4, bmi_kg_m2 = 28.50 kg/m² (derived from weight_kg 74.8 and "
        "height_cm 162)"
    )


def test_cohort_is_read_only_and_by_id_errors(tmp_path: Path) -> None:
    cohort = read_clinical(SAMPLE)
    patient = cohort.patients[0]
    with pytest.raises(TypeError):
        patient.facts["hb_g_dl"] = patient.facts["age_years"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        patient.patient_id = "other"  # type: ignore[misc]
    with pytest.raises(ClinicalDataError, match="NV2026-P999"):
        cohort.by_id("NV2026-P999")
    # a dict given to the constructor is frozen too
    made = PatientFacts("X", 1, 2, "f.csv", facts=dict(patient.facts))
    with pytest.raises(TypeError):
        made.facts["x"] = patient.facts["age_years"]  # type: ignore[index]


def test_get_rejects_unknown_and_alternative_names() -> None:
    patient = read_clinical(SAMPLE).patients[0]
    with pytest.raises(ClinicalDataError, match="hb_g_dl") as info:
        patient.get("hb_gdl")
    assert info.value.tag == "hb_gdl"
    with pytest.raises(ClinicalDataError, match="canonical") as alt:
        patient.value("hb_mmol_l")
    assert "hb_g_dl" in str(alt.value)
    assert field_spec("hb_g_dl").unit == "g/dL"


# ------------------------------------------------------------------------------ units


@pytest.mark.parametrize(
    ("column", "raw", "field", "expected"),
    [
        ("hb_mmol_l", "7.2", "hb_g_dl", 11.60208),  # 11.602 g/dL
        ("hb_g_l", "118", "hb_g_dl", 11.8),
        ("albumin_g_dl", "3.5", "albumin_g_l", 35.0),
        ("platelets_per_mm3", "150000", "platelets_10e9_l", 150.0),
        ("platelets_per_ul", "80000", "platelets_10e9_l", 80.0),
        ("platelets_10e3_ul", "100", "platelets_10e9_l", 100.0),
        ("neutrophils_per_mm3", "1500", "neutrophils_10e9_l", 1.5),
        ("leukocytes_per_ul", "3000", "leukocytes_10e9_l", 3.0),
        ("bilirubin_mg_dl", "1.0", "bilirubin_umol_l", 17.104),
        ("bilirubin_uln_mg_dl", "1.2", "bilirubin_uln_umol_l", 20.5248),
        ("weight_lb", "154", "weight_kg", 154 * 0.45359237),
        ("height_m", "1.75", "height_cm", 175.0),
        ("height_in", "70", "height_cm", 177.8),
        ("gfr_ml_s_1_73m2", "1.2", "gfr_ml_min_1_73m2", 72.0),
        ("asat_ukat_l", "0.5", "asat_u_l", 30.0),
        ("asat_uln_ukat_l", "0.58", "asat_uln_u_l", 34.8),
        ("alat_ukat_l", "0.7", "alat_u_l", 42.0),
        ("crp_mg_dl", "1.5", "crp_mg_l", 15.0),
        ("cga_ng_ml", "407", "cga_ug_l", 407.0),
    ],
)
def test_alternative_unit_converts(
    tmp_path: Path, column: str, raw: str, field: str, expected: float
) -> None:
    patient = one(tmp_path, **{column: raw})
    fact = patient.get(field)
    assert fact is not None
    assert fact.value == pytest.approx(expected, rel=1e-9)
    assert (fact.field, fact.column, fact.raw) == (field, column, raw)
    assert fact.unit == field_spec(field).unit
    assert fact.converted is not None and fact.converted.startswith(f"{raw} ")


def test_converted_values_are_exact_at_thresholds(tmp_path: Path) -> None:
    """1500 /mm³ is exactly 1.5 x 10^9/L, not 1.4999999999999998."""
    patient = one(tmp_path, neutrophils_per_mm3="1500", platelets_per_mm3="150000")
    assert patient.value("neutrophils_10e9_l") == 1.5
    assert patient.value("platelets_10e9_l") == 150.0


def test_converted_describe(tmp_path: Path) -> None:
    fact = one(tmp_path, hb_mmol_l="7.2").get("hb_g_dl")
    assert fact is not None
    assert fact.converted == "7.2 mmol/L x 1.6114 = 11.60 g/dL"
    assert fact.describe() == "cohort.csv line 2, hb_mmol_l = 7.2 (converted: 11.60 g/dL)"


@pytest.mark.parametrize(
    ("field", "alternative"),
    [(s.name, a) for s in clinical_schema() for a in s.alternatives],
    ids=lambda x: getattr(x, "name", x),
)
def test_every_alternative_converts(tmp_path: Path, field: str, alternative: Any) -> None:
    spec = field_spec(field)
    assert spec.min is not None and spec.max is not None
    middle = (spec.min + spec.max) / 2
    raw = repr(middle / alternative.factor)
    fact = one(tmp_path, **{alternative.name: raw}).get(field)
    assert fact is not None
    assert fact.value == pytest.approx(middle, rel=1e-9)


def test_canonical_and_alternative_agreeing(tmp_path: Path) -> None:
    patient = one(tmp_path, hb_g_dl="11.6", hb_mmol_l="7.2", albumin_g_l="35", albumin_g_dl="")
    fact = patient.get("hb_g_dl")
    assert fact is not None
    assert fact.value == 11.6 and fact.column == "hb_g_dl"  # the canonical column wins
    assert patient.value("albumin_g_l") == 35.0


def test_two_alternatives_first_in_schema_wins(tmp_path: Path) -> None:
    fact = one(tmp_path, hb_mmol_l="7.2", hb_g_l="116").get("hb_g_dl")
    assert fact is not None
    assert fact.column == "hb_g_l"  # hb_g_l comes before hb_mmol_l in the schema


def test_canonical_and_alternative_disagreeing(tmp_path: Path) -> None:
    error = error_of(tmp_path, [{"patient_id": "P1", "hb_g_dl": "12.5", "hb_mmol_l": "7.2"}])
    text = str(error)
    assert "row 1 (line 2)" in text
    assert "hb_g_dl" in text and "hb_mmol_l" in text and "disagree" in text
    assert error.tag == "hb_g_dl"
    assert error.files == (tmp_path / "cohort.csv",)


def test_duplicated_column_must_agree(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("patient_id,ecog,ecog\nP1,1,1\nP2,1,\n", encoding="utf-8")
    cohort = read_clinical(path)
    assert [p.value("ecog") for p in cohort] == [1, 1]
    path.write_text("patient_id,ecog,ecog\nP1,1,2\n", encoding="utf-8")
    with pytest.raises(ClinicalDataError, match=r"row 1 \(line 2\).*ecog.*disagree"):
        read_clinical(path)


def test_bmi_given(tmp_path: Path) -> None:
    patient = one(tmp_path, weight_kg="80", height_cm="180", bmi_kg_m2="24.8")
    fact = patient.get("bmi_kg_m2")
    assert fact is not None and fact.derived is None and fact.value == 24.8
    assert one(tmp_path, bmi_kg_m2="41").value("bmi_kg_m2") == 41.0
    error = error_of(
        tmp_path, [{"patient_id": "P1", "weight_kg": "80", "height_cm": "180", "bmi_kg_m2": "30"}]
    )
    assert "bmi_kg_m2" in str(error) and "weight_kg" in str(error) and "height_cm" in str(error)
    assert "row 1 (line 2)" in str(error)


def test_bmi_from_alternative_units(tmp_path: Path) -> None:
    patient = one(tmp_path, weight_lb="220", height_m="1.8")
    bmi = patient.get("bmi_kg_m2")
    assert bmi is not None
    assert bmi.value == pytest.approx(220 * 0.45359237 / 1.8**2)
    assert bmi.derived == "from weight_lb 220 and height_m 1.8"


def test_bmi_derived_impossible(tmp_path: Path) -> None:
    error = error_of(tmp_path, [{"patient_id": "P1", "weight_kg": "80", "height_cm": "31"}])
    text = str(error)
    assert "row 1 (line 2)" in text and "impossible value" in text
    assert "weight_kg" in text and "height_cm" in text and error.tag == "bmi_kg_m2"


def test_bmi_not_derived_without_height(tmp_path: Path) -> None:
    assert one(tmp_path, weight_kg="80").get("bmi_kg_m2") is None


# ------------------------------------------------------------------------------ errors


def test_unknown_column_suggests(tmp_path: Path) -> None:
    error = error_of(tmp_path, [{"patient_id": "P1", "hb_gdl": "11.8"}])
    text = str(error)
    assert "'hb_gdl'" in text and "did you mean" in text and "'hb_g_dl'" in text
    assert "docs/clinical.md" in text
    assert error.tag == "hb_gdl"
    wrong_case = error_of(tmp_path, [{"patient_id": "P1", "Platelets_10e9_L": "200"}])
    assert "'platelets_10e9_l'" in str(wrong_case)


def test_header_without_patient_id(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("age_years\n50\n", encoding="utf-8")
    with pytest.raises(ClinicalDataError, match="patient_id"):
        read_clinical(path)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("age_years", "300"),
        ("platelets_10e9_l", "-5"),
        ("ecog", "7"),
        ("ki67_pct", "120"),
        ("grade", "4"),
        ("hb_g_l", "400"),
        ("weight_lb", "2000"),
    ],
)
def test_impossible_values(tmp_path: Path, column: str, value: str) -> None:
    rows = [{"patient_id": "P1", column: ""}, {"patient_id": "P2", column: value}]
    error = error_of(tmp_path, rows)
    text = str(error)
    assert "row 2 (line 3)" in text
    assert f"column {column} = {value!r}" in text
    assert error.tag == column
    if column != "grade":
        assert "impossible value" in text
    else:
        assert "expected one of 1, 2, 3" in text


def test_integer_fields_reject_fractions(tmp_path: Path) -> None:
    assert one(tmp_path, ecog="2.0").value("ecog") == 2
    error = error_of(tmp_path, [{"patient_id": "P1", "ecog": "1.5"}])
    assert "whole number" in str(error) and "row 1 (line 2)" in str(error)


@pytest.mark.parametrize("value", ["24/06/2024", "2024-6-24", "20240624", "2024-02-30", "today"])
def test_bad_date(tmp_path: Path, value: str) -> None:
    error = error_of(tmp_path, [{"patient_id": "P1", "prrt_start_date": value}])
    assert "YYYY-MM-DD" in str(error) and "row 1 (line 2)" in str(error)
    assert error.tag == "prrt_start_date"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("FALSE", False), ("Yes", True), ("no", False), ("1", True), ("0", False)],
)
def test_booleans(tmp_path: Path, value: str, expected: bool) -> None:
    assert one(tmp_path, prior_prrt=value).value("prior_prrt") is expected


@pytest.mark.parametrize("value", ["maybe", "y", "2", "oui"])
def test_bad_boolean(tmp_path: Path, value: str) -> None:
    error = error_of(tmp_path, [{"patient_id": "P1", "prior_prrt": value}])
    text = str(error)
    assert f"prior_prrt = {value!r}" in text
    for word in (*BOOL_TRUE, *BOOL_FALSE):
        assert word in text


@pytest.mark.parametrize("value", ["11,8", "1,500", "150,000.5"])
def test_comma_decimal(tmp_path: Path, value: str) -> None:
    error = error_of(tmp_path, [{"patient_id": "P1", "hb_g_dl": value}])
    assert "decimal point" in str(error) and "row 1 (line 2)" in str(error)


@pytest.mark.parametrize("value", ["11.8 g/dL", "abc", "1_000", "0x10", "inf", "-Infinity"])
def test_not_a_number(tmp_path: Path, value: str) -> None:
    error = error_of(tmp_path, [{"patient_id": "P1", "hb_g_dl": value}])
    assert "expected a number in g/dL" in str(error)


def test_duplicate_patient(tmp_path: Path) -> None:
    rows = [
        {"patient_id": "P1", "age_years": "61.7"},
        {"patient_id": "P2", "age_years": "55"},
        {"patient_id": "P1", "age_years": "48.2"},
    ]
    error = error_of(tmp_path, rows)
    text = str(error)
    assert "row 3 (line 4)" in text and "row 1 (line 2)" in text and "'P1'" in text
    assert "61.7" not in text and "48.2" not in text
    assert error.tag == "patient_id"


def test_imaging_id_optional_and_unique(tmp_path: Path) -> None:
    cohort = read_clinical(
        write_csv(tmp_path, [{"patient_id": "P1", "imaging_id": "IMG-7"}, {"patient_id": "P2"}])
    )
    assert cohort.patients[0].value("imaging_id") == "IMG-7"
    assert cohort.patients[1].get("imaging_id") is None
    rows = [
        {"patient_id": "P1", "imaging_id": "IMG-7"},
        {"patient_id": "P2", "imaging_id": "IMG-7"},
    ]
    error = error_of(tmp_path, rows)
    assert "row 2 (line 3)" in str(error) and "row 1 (line 2)" in str(error)
    assert error.tag == "imaging_id"


def test_empty_patient_id(tmp_path: Path) -> None:
    error = error_of(tmp_path, [{"patient_id": "P1"}, {"patient_id": " ", "age_years": "50"}])
    assert "row 2 (line 3)" in str(error) and "patient_id" in str(error)


@pytest.mark.parametrize("value", ["", "   ", "NA", "na", "N/A", "n/a", "NaN", "nan"])
def test_missing_cells(tmp_path: Path, value: str) -> None:
    patient = one(
        tmp_path,
        hb_g_dl=value,
        grade=value,
        prior_prrt=value,
        diagnosis_date=value,
        ecog=value,
        age_years="50",
    )
    for name in ("hb_g_dl", "grade", "prior_prrt", "diagnosis_date", "ecog"):
        assert patient.get(name) is None
        assert name not in patient.facts
    assert patient.value("age_years") == 50.0


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("grade", "G2", 2),
        ("grade", "g3", 3),
        ("grade", " 1 ", 1),
        ("sex", "male", "M"),
        ("sex", "Female", "F"),
        ("sex", "f", "F"),
        ("primary_site", "ileum", "small_intestine"),
        ("primary_site", "Jejunum", "small_intestine"),
        ("primary_site", "midgut_small_bowel", "small_intestine"),
        ("primary_site", "PANCREAS", "pancreas"),
        ("histology", "NET", "net"),
        ("best_response_recist", "pr", "PR"),
    ],
)
def test_category_aliases(tmp_path: Path, column: str, value: str, expected: object) -> None:
    got = one(tmp_path, **{column: value}).value(column)
    assert got == expected and type(got) is type(expected)


def test_bad_category_lists_values(tmp_path: Path) -> None:
    error = error_of(tmp_path, [{"patient_id": "P1", "sex": "X"}])
    assert "expected one of M, F" in str(error)


def test_error_never_shows_other_facts(tmp_path: Path) -> None:
    rows = [
        {
            "patient_id": "SECRET-KEY-77",
            "age_years": "87.3",
            "weight_kg": "61.9",
            "diagnosis_date": "2019-04-17",
            "hb_g_dl": "99",
        }
    ]
    text = str(error_of(tmp_path, rows))
    assert "hb_g_dl = '99'" in text
    for other in ("87.3", "61.9", "2019-04-17", "SECRET-KEY-77"):
        assert other not in text
    # a bad boolean in a JSON file
    path = write_json(
        tmp_path, [{"patient_id": "SECRET-KEY-77", "age_years": 87.3, "pregnant": "perhaps"}]
    )
    with pytest.raises(ClinicalDataError) as info:
        read_clinical(path)
    assert "perhaps" in str(info.value)
    assert "87.3" not in str(info.value) and "SECRET-KEY-77" not in str(info.value)


def test_error_message_shape(tmp_path: Path) -> None:
    error = error_of(
        tmp_path,
        [{"patient_id": "P1"}, {"patient_id": "P2"}, {"patient_id": "P3", "hb_g_dl": "11,8"}],
    )
    assert str(error).startswith("row 3 (line 4), column hb_g_dl = '11,8': expected a number")
    assert error.hint and "point" in error.hint


# ------------------------------------------------------------------------------ files


def test_missing_file_and_bad_extension(tmp_path: Path) -> None:
    with pytest.raises(InputPathError):
        read_clinical(tmp_path / "absent.csv")
    with pytest.raises(InputPathError):
        read_clinical(tmp_path)
    xlsx = tmp_path / "cohort.xlsx"
    xlsx.write_bytes(b"PK")
    with pytest.raises(ClinicalDataError, match=r"\.csv, \.json"):
        read_clinical(xlsx)


def test_bom_blank_lines_and_quotes(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(
        '\ufeffpatient_id,primary_site,age_years\r\n"P,1",ileum,50\r\n\r\nP2,,51\r\n'.encode()
    )
    cohort = read_clinical(path)
    assert [p.patient_id for p in cohort] == ["P,1", "P2"]
    assert cohort.patients[1].row == 2 and cohort.patients[1].line == 4
    assert cohort.columns == ("patient_id", "primary_site", "age_years")


def test_semicolon_file(tmp_path: Path) -> None:
    path = tmp_path / "semi.csv"
    path.write_text("patient_id;hb_g_dl\nP1;11,8\n", encoding="utf-8")
    with pytest.raises(ClinicalDataError, match="semicolon"):
        read_clinical(path)


def test_row_with_wrong_cell_count(tmp_path: Path) -> None:
    path = tmp_path / "short.csv"
    path.write_text("patient_id,hb_g_dl,ecog\nP1,11.8\n", encoding="utf-8")
    with pytest.raises(ClinicalDataError, match=r"row 1 \(line 2\) has 2 cells"):
        read_clinical(path)


def test_not_utf8_and_empty(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("patient_id,primary_site\nP1,pancréas\n".encode("latin-1"))
    with pytest.raises(ClinicalDataError, match="UTF-8"):
        read_clinical(path)
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ClinicalDataError, match="empty"):
        read_clinical(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("patient_id,age_years\n", encoding="utf-8")
    with pytest.raises(ClinicalDataError, match="no patient rows"):
        read_clinical(header_only)


# ------------------------------------------------------------------------------ JSON


def _facts(cohort: ClinicalCohort) -> list[dict[str, tuple[object, str | None]]]:
    return [{n: (f.value, f.unit) for n, f in p.facts.items()} for p in cohort]


def test_json_gives_the_same_facts_as_csv(tmp_path: Path) -> None:
    csv_cohort = read_clinical(SAMPLE)
    with SAMPLE.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    typed: list[dict[str, Any]] = []
    for row in rows:
        item: dict[str, Any] = {}
        for key, text in row.items():
            if key in ("age_years", "weight_kg", "hb_g_dl", "crp_mg_l"):
                item[key] = float(text)
            elif key in ("ecog", "grade"):
                item[key] = int(text)
            elif key == "pregnant":
                item[key] = text == "true"
            else:
                item[key] = text
        typed.append(item)
    as_list = read_clinical(write_json(tmp_path, typed, "list.json"))
    as_object = read_clinical(
        write_json(tmp_path, {"schema_version": "1", "patients": typed}, "object.json")
    )
    as_strings = read_clinical(write_json(tmp_path, rows, "strings.json"))
    expected = _facts(csv_cohort)
    assert _facts(as_list) == expected
    assert _facts(as_object) == expected
    assert _facts(as_strings) == expected
    assert as_list.columns == csv_cohort.columns
    second = as_object.patients[1]
    assert (second.row, second.line) == (2, 1)
    fact = second.get("grade")
    assert fact is not None
    assert fact.raw == "2" and fact.location == "patients[1]"
    assert fact.describe() == "object.json patients[1], grade = 2"


def test_json_missing_and_typed_errors(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('[{"patient_id": "P1", "hb_g_dl": NaN, "ecog": null}]', encoding="utf-8")
    patient = read_clinical(path).patients[0]
    assert patient.get("hb_g_dl") is None and patient.get("ecog") is None

    cases: list[tuple[dict[str, Any], str]] = [
        ({"hb_g_dl": True}, "boolean"),
        ({"hb_g_dl": [11.8]}, "single value"),
        ({"diagnosis_date": 20240101}, "YYYY-MM-DD"),
        ({"ecog": 1.5}, "whole number"),
        ({"age_years": 300}, "impossible value"),
        ({"hb_gdl": 11.8}, "did you mean"),
    ]
    for cells, message in cases:
        bad = write_json(tmp_path, [{"patient_id": "P0"}, {"patient_id": "P1", **cells}])
        with pytest.raises(ClinicalDataError, match=message) as info:
            read_clinical(bad)
        assert "row 2 (" in str(info.value), str(info.value)


def test_json_structure_errors(tmp_path: Path) -> None:
    for payload, message in [
        ({"rows": []}, "patients"),
        ("text", "list of patients"),
        ([["P1"]], "expected an object"),
        ({"schema_version": "2", "patients": [{"patient_id": "P1"}]}, "schema_version"),
    ]:
        with pytest.raises(ClinicalDataError, match=message):
            read_clinical(write_json(tmp_path, payload))
    dup = tmp_path / "dup.json"
    dup.write_text('[{"patient_id": "P1", "ecog": 1, "ecog": 2}]', encoding="utf-8")
    with pytest.raises(ClinicalDataError, match="'ecog' is given twice"):
        read_clinical(dup)
    broken = tmp_path / "broken.json"
    broken.write_text('[{"patient_id": "P1",}]', encoding="utf-8")
    with pytest.raises(ClinicalDataError, match=r"not valid JSON.*line 1"):
        read_clinical(broken)


# ------------------------------------------------------------------------------ schema


def test_schema_loads_and_is_consistent() -> None:
    schema = clinical_schema()
    names = [s.name for s in schema]
    columns = [c for s in schema for c in s.columns]
    assert len(columns) == len(set(columns))
    assert names[0] == "patient_id"
    assert field_spec("patient_id").required and field_spec("patient_id").unique
    for spec in schema:
        assert spec.description
        assert re.fullmatch(r"[a-z][a-z0-9_]*", spec.name)
        for alt in spec.alternatives:
            assert alt.factor > 0 and math.isfinite(alt.factor)
            assert alt.reference and alt.unit
        if spec.type == "category":
            assert spec.values
        if spec.type in ("number", "integer"):
            assert spec.min is not None and spec.max is not None and spec.min < spec.max
    # every column of the sample file is canonical
    assert set(read_clinical(SAMPLE).columns) <= set(names)


def test_schema_resource_is_readable() -> None:
    from importlib import resources

    text = resources.files("netvolume.trials").joinpath("clinical_schema.toml").read_text()
    assert 'schema_version = "1"' in text


_GOOD = """
schema_version = "1"
[[field]]
name = "patient_id"
type = "text"
required = true
unique = true
description = "key"
[[field]]
name = "weight_kg"
type = "number"
description = "w"
[[field]]
name = "height_cm"
type = "number"
description = "h"
[[field]]
name = "bmi_kg_m2"
type = "number"
description = "b"
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[field]]\nname = "x"\ntype = "float"\ndescription = "d"', "type 'float'"),
        ('[[field]]\nname = "weight_kg"\ntype = "number"\ndescription = "d"', "already used"),
        (
            '[[field]]\nname = "w2"\ntype = "number"\ndescription = "d"\n'
            '[[field.alternative]]\nname = "height_cm"\nunit = "u"\nfactor = 1\n'
            'reference = "r"',
            "already used",
        ),
        (
            '[[field]]\nname = "w2"\ntype = "number"\ndescription = "d"\n'
            '[[field.alternative]]\nname = "w2_lb"\nunit = "u"\nfactor = -1\n'
            'reference = "r"',
            "positive",
        ),
        ('[[field]]\nname = "x"\ntype = "number"\nmn = 1\ndescription = "d"', "unknown key"),
        ('[[field]]\nname = "x"\ntype = "number"\nmin = 5\nmax = 1\ndescription = "d"', "above"),
        ('[[field]]\nname = "x"\ntype = "category"\ndescription = "d"', "values"),
        (
            '[[field]]\nname = "x"\ntype = "category"\nvalues = ["a"]\ndescription = "d"\n'
            '[field.aliases]\nb = "c"',
            "not a value",
        ),
        ('[[field]]\nname = "x"\ntype = "bool"', "description"),
        ("this is = not toml [", "TOML"),
    ],
)
def test_schema_validation(extra: str, message: str) -> None:
    assert len(_parse_schema(_GOOD, "/x/clinical_schema.toml")) == 4
    with pytest.raises(ClinicalDataError, match=message) as info:
        _parse_schema(_GOOD + "\n" + extra, "/x/clinical_schema.toml")
    assert "clinical_schema.toml" in str(info.value)
    assert info.value.files == (Path("/x/clinical_schema.toml"),)


def test_docs_publish_the_schema() -> None:
    text = DOCS.read_text(encoding="utf-8")
    begin, end = "<!-- schema:begin -->\n", "<!-- schema:end -->"
    assert text.count(begin) == 1 and text.count(end) == 1
    published = text.split(begin, 1)[1].split(end, 1)[0]
    assert published == clinical_schema_markdown(), (
        "docs/clinical.md is out of date: paste clinical_schema_markdown() between the markers"
    )


def test_markdown_lists_every_column() -> None:
    markdown = clinical_schema_markdown()
    for spec in clinical_schema():
        for column in spec.columns:
            assert f"`{column}`" in markdown
    assert "`small_intestine` (ileum, jejunum, midgut_small_bowel" in markdown
    assert "| `hb_mmol_l` | mmol/L | `hb_g_dl` (g/dL) | 1.6114 |" in markdown
