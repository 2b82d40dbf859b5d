"""Who may use senflow over HTTP: users, their tokens, and what each role may touch."""
