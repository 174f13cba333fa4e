"""What operators run around the entry points: retention, listing, health, drills."""
