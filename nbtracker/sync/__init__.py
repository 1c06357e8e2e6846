"""Uploads to a team server (the background uploader, `nbtracker sync`) and reads from it."""
