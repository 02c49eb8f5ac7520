# Two images from one file. The default (last) target is Banyan itself and carries only the
# product: bin, src, migrations, config. The Salesforce emulator is a development tool with an
# image of its own (`--target salesforce-emulator`), used by docker-compose.yml.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY patches ./patches
# No dependency's install scripts run; Banyan's patches to its dependencies (patches/, see
# docs/development.md) are applied on their own.
RUN npm ci --omit=dev --ignore-scripts && npx patch-package

FROM deps AS salesforce-emulator
COPY tools/salesforce-emulator ./tools/salesforce-emulator
CMD ["node", "--import", "tsx", "tools/salesforce-emulator/main.ts", "--host", "0.0.0.0", "--port", "18443"]

FROM deps AS banyan
COPY bin ./bin
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY banyan.yaml tsconfig.json ./
ENTRYPOINT []
CMD ["node", "bin/banyan.mjs", "--help"]
