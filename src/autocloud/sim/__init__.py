"""Vehicle-side code: publishers that speak vehicle protocol v1 like a telematics unit."""
