FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts
COPY . .
ENTRYPOINT []
CMD ["node", "bin/banyan.mjs", "--help"]
