"""Offline calibration on files (``verbcal fit`` / ``verbcal report``): no server, no database.

``files`` reads distribution files (CSV, JSONL) with per-row errors; ``fitting`` fits with a
held-out report and writes the calibrator file.
"""
