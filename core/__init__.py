"""What every layer above shares: settings, the lake layout, events, interfaces, results."""
