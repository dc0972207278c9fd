import MFRecCLI

// The `mfrec` binary: every command lives in MFRecCLI (a library, so the CLI fuzz target can run them in-process).
Mfrec.main()
