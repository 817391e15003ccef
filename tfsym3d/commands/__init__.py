"""The `tfsym3d` commands, one thin module each: `define_flags(fv)` declares its absl flags,
`main(fv, args)` reads them, calls the library and reports what was done on stdout. A
command raises tfsym3d.errors' UserError (or lets the library's errors through); the
dispatcher, tfsym3d.cli, turns them into the one line and the exit status. The library
never imports from here."""
