"""Terminal front-ends, beside `bot/` (Teams): the console (`chat`) and the scripting CLIs (`check`, `spf`, `mfa`,
`mfa-report`, `poll-once`). Like `bot/`, they turn a user's input into dialog calls and print the replies."""
