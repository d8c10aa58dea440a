"""Contact plans, orbital contact prediction and Contact Graph Routing."""
