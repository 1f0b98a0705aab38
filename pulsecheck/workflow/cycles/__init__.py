"""Portfolio review cycles (the SOP's controlled record): service, step runners."""
