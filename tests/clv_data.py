"""The published CLV data sets the tests reproduce (see tests/data/README.md)."""

import pandas as pd

from tests.conftest import DATA

#: CDNOW, 2,357 customers: frequency, recency, T in weeks (Fader, Hardie & Lee 2005)
CDNOW = pd.read_csv(DATA / "cdnow_customers_summary.csv")
#: CDNOW's 946 repeat buyers with their mean spend (Fader & Hardie 2013, Gamma-Gamma)
CDNOW_GG = pd.read_csv(DATA / "cdnow_customers_summary_with_transactions.csv")
#: the donations data of the BG/BB paper (Fader, Hardie & Shang 2010)
DONATIONS = pd.read_csv(DATA / "donations.csv")
