"""Built-in time series, from data that ships inside the statsmodels wheel (no download).

Each is a DataFrame with a time column, read by ``rnnkit.data.timeseries.read_series`` like a user's CSV,
so built-in and user data go through the same checks and gap filling.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import UserError


def need_statsmodels():
    try:
        import statsmodels.datasets as datasets
    except ImportError:
        raise UserError("forecasting needs statsmodels: pip install 'rnnkit[forecast]'") from None
    return datasets


def sunspots():
    """Yearly mean sunspot numbers, 1700-2008 (statsmodels ships the yearly series, not the monthly one)."""
    import pandas as pd
    d = need_statsmodels().sunspots.load_pandas().data
    return pd.DataFrame({"year": d["YEAR"].astype(int), "sunspots": d["SUNACTIVITY"]})


def co2():
    """Mauna Loa atmospheric CO2 (ppm), monthly means of the weekly record 1958-2001; the weekly record's
    missing weeks are left out of the means, and months with no measurement are interpolated."""
    d = need_statsmodels().co2.load_pandas().data
    monthly = d["co2"].resample("MS").mean()
    return monthly.rename_axis("month").reset_index()


def co2_weekly():
    """Mauna Loa atmospheric CO2 (ppm), weekly 1958-2001, with its 59 missing weeks (interpolated)."""
    d = need_statsmodels().co2.load_pandas().data
    return d.rename_axis("week").reset_index()


def elnino():
    """Monthly sea surface temperature (degrees C) of the El Nino region, 1950-2010."""
    import pandas as pd
    d = need_statsmodels().elnino.load_pandas().data
    months = d.columns[1:]
    values = d[months].to_numpy().reshape(-1)
    start = f"{int(d['YEAR'].iloc[0])}-01-01"
    return pd.DataFrame({"month": pd.date_range(start, periods=len(values), freq="MS"), "temperature": values})


def macrodata():
    """US macroeconomic data, quarterly 1959-2009: real GDP (target) with real consumption, real investment
    and the unemployment rate as covariates (multivariate input)."""
    import pandas as pd
    d = need_statsmodels().macrodata.load_pandas().data
    quarters = pd.PeriodIndex.from_fields(year=d["year"].astype(int), quarter=d["quarter"].astype(int), freq="Q")
    return pd.DataFrame({"quarter": quarters.to_timestamp(how="start"), "realgdp": d["realgdp"],
                         "realcons": d["realcons"], "realinv": d["realinv"], "unemp": d["unemp"]})


@dataclass(frozen=True)
class Dataset:
    load: Callable
    target: str
    covariates: tuple[str, ...] = ()
    season: int | None = None        # None: from the frequency
    summary: str = ""


DATASETS = {
    "sunspots": Dataset(sunspots, "sunspots", season=11,
                        summary="yearly sunspot numbers 1700-2008 (309 years; season 11 = the solar cycle)"),
    "co2": Dataset(co2, "co2", summary="Mauna Loa CO2, monthly means 1958-2001 (526 months)"),
    "co2-weekly": Dataset(co2_weekly, "co2", summary="Mauna Loa CO2, weekly 1958-2001 (2284 weeks, 59 missing)"),
    "elnino": Dataset(elnino, "temperature", summary="El Nino sea surface temperature, monthly 1950-2010"),
    "macrodata": Dataset(macrodata, "realgdp", ("realcons", "realinv", "unemp"),
                         summary="US real GDP with consumption, investment, unemployment; quarterly 1959-2009"),
}


def dataset_help() -> str:
    return "; ".join(f"{name}: {d.summary}" for name, d in DATASETS.items())
