"""Where room state lives: in this process (memory) or shared (Redis)."""
