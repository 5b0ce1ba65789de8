"""faultlab's runner: start a variant on a real server, run an experiment's steps, judge, report."""
