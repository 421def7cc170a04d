// An action as an author outside this repository writes it: it imports the
// installed `flow-plugin` package by name. `make test` installs the package
// from a packed tarball and builds this file with its flow-plugin-build.
import { action, Fatal } from "flow-plugin";

export const { describe, run } = action(
  { name: "greet", description: "Says hello to `name`" },
  (_ctx, request) => {
    if (!request.input.name) throw new Fatal("`name` must not be empty");
    return { message: `Hello, ${request.input.name}!` };
  },
);
