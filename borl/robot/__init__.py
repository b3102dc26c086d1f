"""The loop without a simulator: a robot interface, a policy server, a recorder, ingestion and
training of the next iteration from what a robot recorded (docs/robot.md)."""
