{
  description = "yoi-runtime: a runtime layer for long-lived LLM Workers, and its workspace server";

  # Rust 1.89 or newer is needed (the workspace's rust-version: edition
  # 2024 and std's file locks); nixos-25.05 ships an older one.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" "x86_64-darwin" "aarch64-darwin" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        # `nix build .#yoi --no-link` builds the `yoi` binary.
        yoi = pkgs.rustPlatform.buildRustPackage {
          pname = "yoi";
          version = "0.1.0";
          src = pkgs.lib.cleanSourceWith {
            src = ./.;
            filter = path: type:
              let base = baseNameOf path; in
              !(type == "directory" && (base == "target" || base == ".git" || base == "result"));
          };
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "--package" "yoi" ];
          # The tests start servers, kill them and drive a terminal through
          # `script`; they run with `cargo test --workspace` (and `.ci/run`),
          # not in the build sandbox.
          doCheck = false;
          meta = {
            description = "The yoi command (workspace server)";
            mainProgram = "yoi";
            license = with pkgs.lib.licenses; [ mit asl20 ];
          };
        };
        default = yoi;
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [ cargo rustc clippy rustfmt rust-analyzer cargo-nextest ];
        };
      });
    };
}
