"""Maps: division boundaries from the division data, simplified once, and schools as points."""
