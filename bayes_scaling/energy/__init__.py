"""Energy: training (hardware efficiency, utilization, PUE), measured serving energy, outlooks."""
