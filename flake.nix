{
  description = "yoi-runtime: a runtime layer for long-lived LLM Workers, and its workspace server";

  # Rust 1.85 or newer is needed (edition 2024).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-25.05";

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
          # The whole workspace's tests run in the build sandbox (loopback only).
          cargoTestFlags = [ "--workspace" ];
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
