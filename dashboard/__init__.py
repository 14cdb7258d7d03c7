"""The cockpit (数字驾驶舱): a Dash application that reads everything through the API."""
