"""Django's own date display ({{ value }} unfiltered, |date without a format, the admin) in the app's one
format, "1 Dec 2026" and "1 Dec 2026, 10:00" (tracker/formatting.py, which pages use through `when`).

Only the display formats: the input formats (what date fields accept and render) stay Django's.
"""

DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
