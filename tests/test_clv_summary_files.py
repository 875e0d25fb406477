"""Fitting CLV models from summary CSVs (what ``retentio clv fit --summary/--survival``
runs): the same parameters as fitting the arrays, clear errors naming file, line, column
and value, and no pandas, SciPy or Ibis on the BG/NBD path. Also the pieces that path
uses instead: NumPy lnΓ/ψ/ψ′ and the Newton fit with the exact BG/NBD Hessian."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retentio.analytics.clv import (
    BetaGeoBetaBinomModel,
    BetaGeoModel,
    GammaGammaModel,
    ModifiedBetaGeoModel,
    ParetoNBDModel,
    ShiftedBetaGeoModel,
)
from retentio.analytics.clv.summary_files import fit_from_files
from retentio.data.errors import RetentioError
from tests.clv_data import CDNOW
from tests.conftest import DATA, run_cli

REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]


def sig3(value: float, published: float) -> bool:
    return float(f"{value:.3g}") == float(f"{published:.3g}")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


SMALL = "frequency,recency,T\n0,0,10\n2,5.5,10\n1,3,8\n"  # data rows on lines 2, 3, 4


# ---------------------------------------------------------------------- same fit as the arrays
def test_cdnow_csv_gives_the_array_fit_and_the_published_numbers():
    m = fit_from_files("bgnbd", summary=DATA / "cdnow_customers_summary.csv")
    ref = BetaGeoModel().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    assert m.params_ == pytest.approx(ref.params_, rel=1e-12)
    assert m.std_errors_ == pytest.approx(ref.std_errors_, rel=1e-9)
    assert m.log_likelihood_ == pytest.approx(-9582.4, abs=0.1) and m.n_customers_ == 2357
    for name, value in {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}.items():
        assert sig3(m.params_[name], value)


@pytest.mark.parametrize("name,cls", [("mbgnbd", ModifiedBetaGeoModel), ("pareto_nbd", ParetoNBDModel)])
def test_other_continuous_models(name, cls):
    m = fit_from_files(name, summary=DATA / "cdnow_customers_summary.csv")
    ref = cls().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    assert m.params_ == pytest.approx(ref.params_, rel=1e-9)


def test_header_in_any_case_with_spaces_and_a_weight_column(tmp_path):
    counts = CDNOW.groupby(["frequency", "recency", "T"]).size().reset_index(name="weight")
    path = tmp_path / "weighted.csv"
    counts.rename(columns={"frequency": " FREQUENCY", "recency": "Recency", "T": "t "}).to_csv(path, index=False)
    m = fit_from_files("bgnbd", summary=path)
    ref = BetaGeoModel().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    assert m.n_customers_ == 2357
    assert m.params_ == pytest.approx(ref.params_, rel=1e-8)


def test_bgbb_gamma_gamma_and_sbg_files(tmp_path):
    donations = pd.read_csv(DATA / "donations.csv")
    path = tmp_path / "donations.csv"
    donations.rename(columns={"periods": "n_periods", "weights": "weight"}).to_csv(path, index=False)
    m = fit_from_files("bgbb", summary=path)
    ref = BetaGeoBetaBinomModel().fit(donations.frequency, donations.recency, donations.periods,
                                      weights=donations.weights)
    assert m.params_ == pytest.approx(ref.params_, rel=1e-9) and m.n_customers_ == 11104

    gg = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")
    path = tmp_path / "spend.csv"
    spend = gg.rename(columns={"x": "frequency", "zbar": "monetary_value"})[["frequency", "monetary_value"]]
    spend.to_csv(path, index=False)
    m = fit_from_files("gamma_gamma", summary=path)
    assert m.params_ == pytest.approx(GammaGammaModel().fit(gg.x, gg.zbar).params_, rel=1e-9)

    rows = [("regular", p, c) for p, c in enumerate(REGULAR)] + [("high end", p, c) for p, c in enumerate(HIGH_END)]
    rows = rows[::-1]  # any row order
    path = write(tmp_path / "survival.csv", "Period,Customers,Cohort\n" + "".join(f"{p},{c},{k}\n" for k, p, c in rows))
    m = fit_from_files("sbg", survival=path)
    assert m.params_ == pytest.approx(ShiftedBetaGeoModel().fit([REGULAR, HIGH_END]).params_, rel=1e-9)
    one = write(tmp_path / "one.csv", "period,customers\n" + "".join(f"{p},{c}\n" for p, c in enumerate(REGULAR)))
    assert sig3(fit_from_files("sbg", survival=one).params_["alpha"], 0.704)


# ---------------------------------------------------------------------- errors
def message(**kwargs) -> str:
    with pytest.raises(RetentioError) as e:
        fit_from_files(**kwargs)
    return str(e.value)


@pytest.mark.parametrize("value,expected", [("abc", "a number"), ("", "a number"), ("NA", "a number"),
                                            ("inf", "a finite number"), ("1,5", None)])
def test_a_bad_value_names_file_line_column_and_value(tmp_path, value, expected):
    # a blank line after the header: the bad row is still reported on the line an editor shows
    path = write(tmp_path / "bad.csv", f"frequency,recency,T\n\n0,0,10\n2,{value},10\n1,3,8\n")
    text = message(name="bgnbd", summary=path)
    if expected is None:  # a decimal comma splits the row into one field too many
        assert text == f"{path}, line 4: 4 field(s) where the header has 3: '2,1,5,10'"
    else:
        assert text == f"{path}, line 4, column 'recency': got {value!r}; expected {expected}"


def test_a_bad_value_far_down_a_file(tmp_path):
    lines = ["frequency,recency,T"] + ["1,2,3"] * 5000 + ["1,2,x"] + ["1,2,3"] * 10
    path = write(tmp_path / "long.csv", "\n".join(lines) + "\n")
    assert message(name="pareto_nbd", summary=path) == f"{path}, line 5002, column 'T': got 'x'; expected a number"


def test_a_row_the_model_refuses_is_named_by_its_line(tmp_path):
    path = write(tmp_path / "late.csv", SMALL + "3,9,7\n")  # recency 9 > T 7 on line 5
    assert re.fullmatch(rf"{re.escape(str(path))}, line 5: recency .* cannot exceed T .* \(got frequency 3, recency 9, T 7\)",
                        message(name="bgnbd", summary=path))
    neg = write(tmp_path / "neg.csv", "frequency,recency,T,weight\n1,2,3,-1\n")
    assert message(name="bgnbd", summary=neg) == f"{neg}, line 2, column 'weight': got '-1'; expected a number ≥ 0"


def test_missing_columns_say_what_the_file_has(tmp_path):
    path = write(tmp_path / "cols.csv", "customer,frequency,recency\n1,0,0\n")
    assert message(name="bgnbd", summary=path) == (
        f"{path}: missing column(s) ['T']; it has ['customer', 'frequency', 'recency']")
    assert "missing column(s) ['n_periods']" in message(name="bgbb", summary=path)
    assert "missing column(s) ['monetary_value']" in message(name="gamma_gamma", summary=path)


def test_missing_empty_and_non_text_files(tmp_path):
    gone = tmp_path / "nowhere.csv"
    assert message(name="bgnbd", summary=gone) == f"{gone}: no such file"
    empty = write(tmp_path / "empty.csv", "")
    assert message(name="bgnbd", summary=empty).startswith(f"{empty}: the file is empty")
    header_only = write(tmp_path / "header.csv", "frequency,recency,T\n")
    assert message(name="bgnbd", summary=header_only) == f"{header_only}: no rows below the header"
    binary = tmp_path / "book.xlsx"
    binary.write_bytes(b"PK\x03\x04\x00\x00binary")
    assert "not a text CSV file" in message(name="bgnbd", summary=binary)


def test_sbg_needs_a_survival_file_and_other_models_a_summary(tmp_path):
    """Errors in domain terms (the parameter, not a command-line option); the CLI words them."""
    from retentio.data.errors import InvalidParameter

    assert message(name="sbg") == "survival is missing: expected a survival file (period,customers[,cohort]) for the sBG model"
    assert message(name="sbg", summary=write(tmp_path / "s.csv", SMALL)) == message(name="sbg")
    assert message(name="bgnbd").startswith("summary is missing: expected a summary file (frequency,recency,T")
    with pytest.raises(InvalidParameter) as info:
        fit_from_files("sbg")
    assert info.value.named("--survival").startswith("--survival is missing: expected a survival file")
    code, _, err = run_cli("clv", "fit", "--model", "sbg")
    assert code == 2 and "--survival is missing" in err
    assert "unknown model 'bgnd'" in message(name="bgnd", summary=tmp_path / "s.csv")


def test_survival_periods_must_run_from_zero_without_gaps(tmp_path):
    path = write(tmp_path / "gap.csv", "period,customers\n0,100\n1,80\n3,60\n")
    assert message(name="sbg", survival=path).startswith(
        f"{path}, line 4, column 'period': got '3': found where period 2 was expected")
    rising = write(tmp_path / "rising.csv", "period,customers\n0,100\n1,80\n2,120\n")
    assert message(name="sbg", survival=rising) == (
        f"{rising}, line 4, column 'customers': got '120'; more than the 80 of period 1: survivors never increase")
    empty_start = write(tmp_path / "zero.csv", "period,customers\n0,0\n1,0\n")
    assert message(name="sbg", survival=empty_start) == (
        f"{empty_start}, line 2, column 'customers': got '0'; the cohort must start with a positive count")


# ---------------------------------------------------------------------- what the fast path avoids
def test_the_bgnbd_file_path_imports_no_pandas_scipy_or_ibis(tmp_path):
    code = ("import sys; from retentio.analytics.clv.summary_files import fit_from_files; "
            f"m = fit_from_files('bgnbd', summary={str(DATA / 'cdnow_customers_summary.csv')!r}); "
            "assert m.converged_; "
            "print(sorted({n.split('.')[0] for n in sys.modules} & {'pandas', 'scipy', 'ibis'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_numpy_special_functions_match_scipy():
    from scipy import special

    from retentio.analytics.clv import _special

    x = np.concatenate([np.logspace(-11, 6, 400), np.arange(0, 3000) + 0.243, [1.4616321449683622, 10.0]])
    assert np.allclose(_special.gammaln(x), special.gammaln(x), rtol=1e-14, atol=1e-14)
    assert np.allclose(_special.digamma(x), special.digamma(x), rtol=1e-14, atol=1e-14)
    assert np.allclose(_special.trigamma(x), special.polygamma(1, x), rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel])
def test_newton_with_the_exact_hessian_agrees_with_lbfgsb(cls):
    newton = cls().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    assert newton.fit_report_.message.startswith("Newton")
    lbfgsb = type("Plain", (cls,), {"_exact_hessian": False})().fit(CDNOW.frequency, CDNOW.recency, CDNOW["T"])
    assert newton.params_ == pytest.approx(lbfgsb.params_, rel=1e-6)
    assert newton.std_errors_ == pytest.approx(lbfgsb.std_errors_, rel=1e-4)  # exact vs finite-difference Hessian
    assert newton.log_likelihood_ == pytest.approx(lbfgsb.log_likelihood_, abs=1e-6)
