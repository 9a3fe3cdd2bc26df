"""Pure figure functions: data in, plotly figure out; no Dash, no I/O."""
