"""An ISO date column becomes days since 1970 (the year with it) and its month and day of the week as points on a
circle, computed from the date alone: checked against Python's own calendar, and a model that needs the weekday
and the season learns them from the date column only."""
import datetime as dt
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from glassbox.cli import main
from glassbox.data.examples import Examples
from glassbox.data.tabular import TabularEncoder


def daily_table(first: str, days: int) -> pd.DataFrame:
    """One row a day: a date, and a value set by the calendar alone (a seasonal swing plus a weekend bump), in
    whole units: what a model can learn only from the month and the weekday."""
    dates = [dt.date.fromisoformat(first) + dt.timedelta(days=i) for i in range(days)]
    value = [round(10 * math.cos(2 * math.pi * (d.month - 1) / 12) + 6 * (d.weekday() >= 5), 1) for d in dates]
    return pd.DataFrame({"day": [d.isoformat() for d in dates], "value": value})


def test_month_and_weekday_are_pythons_calendar_on_a_circle():
    table = daily_table("2023-12-25", 20).astype(str)
    table.loc[3, "day"] = ""  # a missing date
    ex = Examples(kind="tabular", inputs=table[["day"]], labels=np.zeros(20, dtype=np.int64), classes=["x"],
                  keys=table["day"].tolist())
    enc = TabularEncoder().fit(ex)
    assert enc.numeric["day"]["calendar"] and enc.n_numeric == 1 + 1 + 4  # days, missing flag, 2 circles
    x = enc.encode(table[["day"]])
    for i, text in enumerate(table["day"]):
        if not text:
            assert x[i, 2:6].tolist() == [0.0] * 4 and x[i, 1] == 1.0
            continue
        d = dt.date.fromisoformat(text)
        month, weekday = 2 * math.pi * (d.month - 1) / 12, 2 * math.pi * d.weekday() / 7  # Monday 0, as pandas
        expected = [math.sin(month), math.cos(month), math.sin(weekday), math.cos(weekday)]
        assert x[i, 2:6].tolist() == pytest.approx(expected, abs=1e-6)
    # December and January sit side by side on the circle; June is across it
    dec, jan = enc.encode(pd.DataFrame({"day": ["2023-12-31"]})), enc.encode(pd.DataFrame({"day": ["2024-01-01"]}))
    jun = enc.encode(pd.DataFrame({"day": ["2024-06-15"]}))
    assert torch.dist(dec[0, 2:4], jan[0, 2:4]) < 0.6 < 1.9 < torch.dist(jan[0, 2:4], jun[0, 2:4])


def test_a_calendar_driven_value_is_learned_from_the_date_alone(tmp_path):
    from sklearn.linear_model import LinearRegression

    table = daily_table("2022-01-01", 1095)
    table.to_csv(tmp_path / "daily.csv", index=False)
    assert main(["train", str(tmp_path / "daily.csv"), "--label", "value", "--task", "regression", "--model", "mlp",
                 "--epochs", "10", "--quiet", "--out", str(tmp_path / "run")]) == 0
    s = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert s["task"] == "regression"
    # the month swing and the weekend bump explain nearly all the variance; a trend in the days explains none
    days = (pd.to_datetime(table["day"]) - pd.Timestamp("1970-01-01")).dt.days.to_numpy()[:, None]
    trend = LinearRegression().fit(days, table["value"]).score(days, table["value"])
    assert s["test_r2"] > 0.9 and trend < 0.01 and s["chance"]["test_r2"] < 0.01
