"""The log itself: turning drafts into stored rows, and the group-commit writer thread."""
