"""The logging side: Run, Config, Summary, settings, value normalisation and media."""
